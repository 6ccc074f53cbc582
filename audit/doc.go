// Package audit is patchgate's audit log: one JSON object per line (schema in
// docs/audit.md), owned by one process, the daemon, and fed by the others.
//
// The API, by role:
//
//	rec := audit.NewRecord(source, workload, decision, kernel, remediation)
//	audit.ShouldRecord(decision, cfg.RecordAllowed)
//	audit.FailClosed(&decision, err)  // failClosed: Write/Send failed or Health().Blocks()
//	logger.WithFields(rec.Fields())   // operational log line (pod, container, rule, decision)
//
//	// daemon (patchgate serve, the NRI plugin)
//	log, err := audit.Open(audit.Config{Path: ..., Sync: ..., FailClosed: ...})
//	srv, err := audit.NewServer(log, audit.WithSocket(audit.DefaultSocket))
//	go srv.Serve(ctx)             // socket + periodic spool ingest
//	err = log.Write(ctx, rec)     // in-process decisions
//	log.Health()                  // no I/O; Health.Blocks() for failClosed
//
//	// other processes (the OCI hook)
//	c, err := audit.NewClient(audit.WithClientSocket(...), audit.WithSpool(audit.SpoolPathFor(cfg.Path)))
//	err = c.Send(ctx, rec)        // daemon, else spool; error = stored nowhere
//	h, err := c.Health(ctx)       // the daemon's Health, for `patchgate check`
//
//	// readers (patchgate audit)
//	recs, problems, err := audit.ReadAll(ctx, path, audit.ReadOptions{SpoolPath: ...})
//
// # Guarantees
//
// Write and Send return after the record was handed to the kernel with one
// write(2) of the whole line (and fsync with Config.Sync). A record is never
// split: the daemon writes under a mutex and cuts a short write (disk full)
// off again; spool senders append under an exclusive flock and do the same.
// A line torn by a crash of the daemon is moved to the ".rejected" file on the
// next Open, so every line of the log parses.
//
// Rotation happens under the same mutex between two records, so it neither
// loses nor repeats one. Backups are Path.<UTC time of the rotation>
// (BackupLayout); the oldest beyond MaxBackups are deleted.
//
// The socket and the spool: a sender that gets no acknowledgement appends the
// record to the spool, even if the daemon did write it before dying. The
// daemon therefore de-duplicates by UUID everything it takes from the socket
// or the spool, and every Write whose caller supplied the UUID (the node
// service writing the record for a decision whose hook already sent its
// own), against the UUIDs it has seen: those written since Open (the
// last 65,536) and those in the last 16 MiB of the log at Open. Ingest renames
// the spool, waits for in-flight senders, writes, fsyncs the log and only
// then deletes the renamed file; after a crash in the middle, Open finds the
// renamed file and scans the whole log (all backups) for its UUIDs. So a
// record is lost only if the log cannot be written at all (counted in
// Health.Failures), and duplicated only if its first copy was written more
// than the seen window earlier and already rotated out of every backup.
//
// When the log cannot be written, Write returns an error wrapping
// ErrUnavailable, the failure is counted and logged at most once per
// Config.ErrorInterval, and Health().OK is false until a write succeeds; the
// caller's decision goes ahead unless Config.FailClosed is set.
package audit
