package store

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
)

// snapshotVersion is the version of the snapshot format SaveFile writes
// and LoadFile reads.
const snapshotVersion = 1

// snapshot is the JSON form of a Memory: every account and every key, keys
// by digest only.
type snapshot struct {
	Version  int       `json:"version"`
	Accounts []Account `json:"accounts"`
	Keys     []Key     `json:"keys"`
}

// SaveFile writes every account and key of m to the named file as JSON.
// Keys are saved by digest; raw keys are never known to the store. The
// file is replaced atomically: SaveFile writes a temporary file in the same
// directory, flushes it to stable storage and renames it over path, so a
// crash or a failed write leaves the previous file intact. The new file is
// readable and writable by its owner only.
//
// Each account is saved in a consistent state, but spends may proceed while
// SaveFile runs, so the file need not show all accounts at one instant.
func (m *Memory) SaveFile(path string) error {
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

// snapshot collects a copy of the store's contents, sorted so that saving
// an unchanged store writes an identical file.
func (m *Memory) snapshot() snapshot {
	m.mu.Lock()
	accounts := m.accounts.Items()
	s := snapshot{
		Version:  snapshotVersion,
		Accounts: make([]Account, 0, len(accounts)),
		Keys:     make([]Key, 0, m.keys.n),
	}
	m.keys.each(func(k *memoryKey) { s.Keys = append(s.Keys, k.key) })
	m.mu.Unlock()

	for _, it := range accounts {
		e := it.(*memoryAccount)
		e.mu.Lock()
		a := e.accountLocked() // the store never modifies what a shares with it in place
		e.mu.Unlock()
		a.entry = nil
		s.Accounts = append(s.Accounts, a)
	}
	slices.SortFunc(s.Accounts, func(a, b Account) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(s.Keys, func(a, b Key) int {
		return cmp.Or(cmp.Compare(a.AccountID, b.AccountID), bytes.Compare(a.Digest[:], b.Digest[:]))
	})
	return s
}

// LoadFile reads a file written by [Memory.SaveFile] and adds its accounts
// and keys to m, replacing accounts with the same ID and keys with the same
// digest; what m holds beyond the file stays. The file is checked as a
// whole — version, every account with [Account.Validate], every key with
// [Key.Validate] and that its account exists — before anything changes, so
// a bad file changes nothing.
//
// If the file does not exist, the error wraps [io/fs.ErrNotExist], so a
// server can start empty on its first run:
//
//	if err := m.LoadFile(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
//		log.Fatal(err)
//	}
func (m *Memory) LoadFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return errorf("load snapshot: %w", err)
	}
	var s snapshot
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return errorf("load snapshot %s: %w", path, err)
	}
	if s.Version != snapshotVersion {
		return errorf("load snapshot %s: unsupported version %d", path, s.Version)
	}
	ids := make(map[string]bool, len(s.Accounts))
	for i := range s.Accounts {
		if err := s.Accounts[i].Validate(); err != nil {
			return errorf("load snapshot %s: %w", path, err)
		}
		ids[s.Accounts[i].ID] = true
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range s.Keys {
		k := &s.Keys[i]
		if err := k.Validate(); err != nil {
			return errorf("load snapshot %s: %w", path, err)
		}
		if _, ok := m.accounts.Get(k.AccountID); !ok && !ids[k.AccountID] {
			return errorf("load snapshot %s: key %s: account %q: %w", path, k.Prefix, k.AccountID, ErrNotFound)
		}
	}
	for _, a := range s.Accounts {
		m.putAccountLocked(a.Clone()) // Clone clips Features, as PutAccount's copies are
	}
	for _, k := range s.Keys {
		v, _ := m.accounts.Get(k.AccountID) // present: checked above, then put
		m.putKeyLocked(k, v.(*memoryAccount))
	}
	return nil
}

// writeFileAtomic replaces the named file with what write produces: it
// writes a temporary file in the same directory, syncs it and renames it
// over path. On failure the temporary file is removed and path is
// untouched.
func writeFileAtomic(path string, write func(io.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
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
	if err = write(w); err != nil {
		return err
	}
	if err = w.Flush(); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	// Make the rename itself durable. Not every platform can sync a
	// directory, and the data is already safe, so failure is ignored.
	if d, derr := os.Open(dir); derr == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
