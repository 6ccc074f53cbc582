// Package fstree copies fixture host trees for tests and the demo, so they may
// change them (a recorded provider "applies" a patch), and makes the copies
// root-only writable, as patchgate's policy loader and tool lookup insist.
package fstree

import (
	"io/fs"
	"os"
	"path/filepath"
)

// Copy copies the tree at src to dst: directories, regular files with their
// permission bits, and symbolic links as links (never followed).
func Copy(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(l, target)
		case info.IsDir():
			return os.MkdirAll(target, 0o755)
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(target, b, info.Mode().Perm())
		}
	})
}

// RootOnly removes the group and other write bits from everything under dir
// (symbolic links are left alone).
func RootOnly(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		return os.Chmod(p, fi.Mode().Perm()&^0o022)
	})
}
