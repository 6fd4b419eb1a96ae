package store

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// snapshotVersion is the version of the file format of [Memory.SaveFile].
const snapshotVersion = 1

// snapshot is the JSON form of a Memory.
type snapshot struct {
	Version  int       `json:"version"`
	Accounts []Account `json:"accounts"`
	Keys     []Key     `json:"keys"`
}

// staleTempAge is how long after its last write a snapshot's temporary
// file is taken for the leftover of a save that crashed.
const staleTempAge = 5 * time.Minute

// SaveFile writes every account and key (by digest) of m to the named file as
// JSON, readable and writable by its owner only, replacing it atomically
// through a temporary file synced to stable storage: a crash or a failed write
// leaves the previous file intact. Each account is saved in a consistent state,
// but spends proceed meanwhile; credits held ([Memory.Hold]) are saved as
// released, since no hold outlives its process. SaveFile and LoadFile remove the temporary
// files of crashed saves of the same path: those no one has written to for five
// minutes (a save in progress writes on).
func (m *Memory) SaveFile(path string) error {
	removeStaleTemps(path, time.Now())
	s := m.snapshot()
	if err := writeFileAtomic(path, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "\t")
		return enc.Encode(s)
	}); err != nil {
		return errorf("save snapshot: %w", err)
	}
	return nil
}

// snapshot copies the store's contents, sorted so that saving an unchanged
// store writes an identical file.
func (m *Memory) snapshot() snapshot {
	var entries []*memoryAccount
	var keys []Key
	m.mu.Lock()
	m.accounts.each(func(_ string, e **memoryAccount) { entries = append(entries, *e) })
	m.keys.each(func(_ Digest, k *memoryKey) { keys = append(keys, k.key) })
	m.mu.Unlock()
	s := snapshot{Version: snapshotVersion, Accounts: make([]Account, 0, len(entries)), Keys: keys}
	for _, e := range entries {
		e.mu.Lock()
		a := e.accountLocked()
		for _, h := range e.holds { // a hold does not outlive its process
			a.Balance += h.amount
		}
		s.Accounts = append(s.Accounts, a)
		e.mu.Unlock()
	}
	slices.SortFunc(s.Accounts, func(a, b Account) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(s.Keys, func(a, b Key) int {
		return cmp.Or(cmp.Compare(a.AccountID, b.AccountID), bytes.Compare(a.Digest[:], b.Digest[:]))
	})
	return s
}

// LoadFile adds the accounts and keys of a file written by [Memory.SaveFile] to
// m, replacing those with the same ID or digest. It checks the whole file
// first, as PutAccount and PutKey do (cutting long key prefixes), so a bad file
// changes nothing. A missing file's error wraps [io/fs.ErrNotExist], so a
// server can start empty:
//
//	if err := m.LoadFile(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
//		log.Fatal(err)
//	}
func (m *Memory) LoadFile(path string) error {
	removeStaleTemps(path, time.Now())
	s, err := readSnapshot(path)
	if err != nil {
		return errorf("load snapshot %s: %w", path, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := make(map[string]bool, len(s.Accounts))
	for i := range s.Accounts {
		ids[s.Accounts[i].ID] = true
	}
	for i := range s.Keys {
		k := &s.Keys[i]
		if err := k.validate(); err != nil {
			return errorf("load snapshot %s: %w", path, err)
		}
		if m.accounts.get(k.AccountID) == nil && !ids[k.AccountID] {
			return errorf("load snapshot %s: key %s: account %q: %w", path, k.Prefix, k.AccountID, ErrNotFound)
		}
	}
	for _, a := range s.Accounts {
		m.putAccountLocked(a.clone()) // clone clips Features, as PutAccount's copies are
	}
	for _, k := range s.Keys {
		m.keys.set(k.Digest, memoryKey{k, *m.accounts.get(k.AccountID)}) // present: checked above, then put
	}
	return nil
}

// readSnapshot reads a snapshot file and checks its version and accounts.
func readSnapshot(path string) (*snapshot, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s snapshot
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, err
	}
	if s.Version != snapshotVersion {
		return nil, fmt.Errorf("unsupported version %d", s.Version)
	}
	for i := range s.Accounts {
		if err := s.Accounts[i].Validate(); err != nil {
			return nil, err
		}
	}
	return &s, nil
}

// tempPattern returns the directory and [os.CreateTemp] pattern for path.
func tempPattern(path string) (dir, pattern string) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	return dir, "." + base + ".tmp-*"
}

// removeStaleTemps removes, as best it can, path's stale temporary files.
func removeStaleTemps(path string, now time.Time) {
	dir, pattern := tempPattern(path)
	head := strings.TrimSuffix(pattern, "*")
	entries, _ := os.ReadDir(dir)
	for _, de := range entries {
		digits, ok := strings.CutPrefix(de.Name(), head)
		if !ok || digits == "" || strings.Trim(digits, "0123456789") != "" || !de.Type().IsRegular() {
			continue
		}
		if info, err := de.Info(); err == nil && info.ModTime().Before(now.Add(-staleTempAge)) {
			os.Remove(filepath.Join(dir, de.Name()))
		}
	}
}

// writeFileAtomic replaces path with what write produces, through a synced
// temporary file renamed over it; on failure it leaves path untouched.
func writeFileAtomic(path string, write func(io.Writer) error) (err error) {
	dir, pattern := tempPattern(path)
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close() // may fail as already closed; the first error matters
			os.Remove(tmp)
		}
	}()
	w := bufio.NewWriter(f)
	steps := []func() error{func() error { return write(w) }, w.Flush, f.Sync, f.Close,
		func() error { return os.Rename(tmp, path) }}
	for _, step := range steps {
		if err = step(); err != nil {
			return err
		}
	}
	// Make the rename durable, where a directory can be synced.
	if d, derr := os.Open(dir); derr == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
