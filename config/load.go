package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
)

// LoadDir loads every .yml and .yaml file under dir, recursively, as
// LoadFS does. Error messages name files by their path under dir joined
// to dir.
func LoadDir(dir string) (*Set, error) {
	return load(os.DirFS(dir), ".", func(p string) string {
		return filepath.Join(dir, filepath.FromSlash(p))
	})
}

// LoadFS loads every file under root in fsys whose name ends in .yml or
// .yaml, walking directories recursively in lexical order. Each file must
// hold one document; other files are ignored. The items are added to a new
// Set, which is then validated (see Set.Validate).
//
// LoadFS reports every problem it finds, in every file, joined with
// errors.Join, and then returns a nil Set: it never returns a partial one.
// Error messages name files by their path in fsys. Problems with the
// content are *Error values; a file that cannot be read is reported as an
// *fs.PathError, so errors.Is(err, fs.ErrNotExist) works for a missing
// root.
func LoadFS(fsys fs.FS, root string) (*Set, error) {
	return load(fsys, root, func(p string) string { return p })
}

func load(fsys fs.FS, root string, display func(string) string) (*Set, error) {
	var (
		s      = new(Set)
		errs   []error
		broken = make(map[itemKey]bool)
	)
	walkErr := fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			errs = append(errs, ioError(err, display))
			return nil // skips an unreadable directory, goes on with the rest
		}
		if d.IsDir() {
			return nil
		}
		if ext := path.Ext(p); ext != ".yml" && ext != ".yaml" {
			return nil
		}
		name := display(p)
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			errs = append(errs, ioError(err, display))
			return nil
		}
		it, key, perrs := parse(name, data)
		if len(perrs) > 0 {
			errs = append(errs, perrs...)
			if key.kind != "" && (key.name != "" || key.kind == KindGlobal) {
				broken[key] = true
			}
			return nil
		}
		if err := s.Add(name, it); err != nil {
			errs = append(errs, err)
		}
		return nil
	})
	if walkErr != nil {
		errs = append(errs, ioError(walkErr, display))
	}
	errs = append(errs, s.validate(broken)...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return s, nil
}

// ioError prefixes a file system error with the package name and shows
// its path as the caller knows it.
func ioError(err error, display func(string) string) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = &fs.PathError{Op: pe.Op, Path: display(pe.Path), Err: pe.Err}
	}
	return fmt.Errorf("config: %w", err)
}
