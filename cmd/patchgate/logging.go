package main

import (
	"context"
	"fmt"
	"io"
	"slices"

	nrilog "github.com/containerd/nri/pkg/log"
	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"
)

// logFlags are the daemons' (nri, serve) log flags: one format and level
// for every line on stderr, patchgate's own and those of the libraries it
// runs (the NRI stub, ttrpc and containerd's log package).
type logFlags struct {
	format, level string
}

var logFormats = []string{"json", "text"}

func (l *logFlags) add(cmd *cobra.Command) {
	fs := cmd.PersistentFlags()
	fs.StringVar(&l.format, "log-format", "json", "log format on stderr: json or text (every line, the NRI stub's too)")
	fs.StringVar(&l.level, "log-level", "info", "log level: debug, info, warn or error")
	_ = cmd.RegisterFlagCompletionFunc("log-format", cobra.FixedCompletions(logFormats, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("log-level", cobra.FixedCompletions([]string{"debug", "info", "warn", "error"}, cobra.ShellCompDirectiveNoFileComp))
}

// logger builds the daemon's logger on w and routes the libraries' loggers
// through the same format, level and output: the NRI stub's (nri/pkg/log)
// into it with component=nri, and logrus's standard logger (containerd's
// log package, which ttrpc uses) set alike.
func (l *logFlags) logger(w io.Writer) (*logrus.Logger, error) {
	if !slices.Contains(logFormats, l.format) {
		return nil, fmt.Errorf("--log-format %q: want json or text", l.format)
	}
	lvl, err := logrus.ParseLevel(l.level)
	if err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", l.level)
	}
	configure := func(lg *logrus.Logger) {
		lg.SetOutput(w)
		lg.SetLevel(lvl)
		if l.format == "text" {
			lg.SetFormatter(&logrus.TextFormatter{FullTimestamp: true, DisableColors: true})
		} else {
			lg.SetFormatter(&logrus.JSONFormatter{})
		}
	}
	lg := logrus.New()
	configure(lg)
	configure(logrus.StandardLogger())
	nrilog.Set(nriLogger{lg.WithField("component", "nri")})
	return lg, nil
}

// nriLogger is the NRI stub's logger (nrilog.Logger) over patchgate's.
type nriLogger struct{ e *logrus.Entry }

func (n nriLogger) Debugf(_ context.Context, format string, args ...any) { n.e.Debugf(format, args...) }
func (n nriLogger) Infof(_ context.Context, format string, args ...any)  { n.e.Infof(format, args...) }
func (n nriLogger) Warnf(_ context.Context, format string, args ...any)  { n.e.Warnf(format, args...) }
func (n nriLogger) Errorf(_ context.Context, format string, args ...any) { n.e.Errorf(format, args...) }
