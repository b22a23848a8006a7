// Package history keeps the dashboard's record: each request's metadata and
// the subscriptions' usage samples, in SQLite (~/.claude-code-mux/ccmux.db).
// It records off the request path, through a bounded queue written in
// batches; it never stores prompts, answers, headers or credentials.
package history

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // pure Go: ccmux builds without cgo for every platform
)

// FileName is the database's name in ccmux's directory.
const FileName = "ccmux.db"

// DefaultRetentionDays is [dashboard] retention_days' default.
const DefaultRetentionDays = 30

// Queue and batch sizes: a batch is written when it holds batchSize records
// or flushEvery after its first record, whichever comes first, so a killed
// process loses at most flushEvery of records.
const (
	queueSize  = 8192
	batchSize  = 512
	flushEvery = 500 * time.Millisecond
	pruneEvery = time.Hour
)

// Request is one request's metadata. Token counts are the answer's usage;
// TokensKnown is false when the answer carried none (an error, a body ccmux
// could not read), and they are then stored as unknown, not as zero.
type Request struct {
	Time      time.Time
	Model     string // the model the client asked for
	Provider  string
	ModelSent string // the model sent upstream
	// Failover lists the providers tried before Provider, in order.
	Failover    string
	Status      int
	TTFB        time.Duration // until the answer's status line went to the client; 0 if none did
	Duration    time.Duration
	TokensKnown bool
	Input       int64
	Output      int64
	CacheRead   int64
	CacheWrite  int64
}

// UsageSample is one reading of a subscription's usage window.
type UsageSample struct {
	Time        time.Time
	Login       string
	Window      string
	Utilization float64 // a fraction, as auth.UsageWindow: 0.42 is 42 %
	ResetsAt    time.Time
}

// item is one queued record: a request or a usage sample.
type item struct {
	req   Request
	usage UsageSample
	isReq bool
}

// Store is an open history database. A nil *Store records nothing and
// answers empty, so callers need not check whether history is on.
type Store struct {
	db   *sql.DB
	path string
	log  *slog.Logger
	now  func() time.Time
	loc  *time.Location // days are counted in this zone (the machine's)

	// Retention returns the days to keep; nil or ≤ 0 means DefaultRetentionDays.
	retention func() int

	queue    chan item
	dropped  atomic.Int64
	reported int64 // the dropped the log has told of (the writer's)
	flushReq chan chan struct{}
	stop     chan struct{}
	done     chan struct{}
	once     sync.Once
}

// Options tune Open; the zero value is fine.
type Options struct {
	Logger *slog.Logger
	// Retention returns the days of history to keep; it is asked at each
	// prune, so a reloaded config applies. nil keeps DefaultRetentionDays.
	Retention func() int
	// Now and Location are the clock and the zone days are counted in
	// (tests); nil means time.Now and time.Local.
	Now      func() time.Time
	Location *time.Location
}

// Path is the database in dir (~/.claude-code-mux).
func Path(dir string) string { return filepath.Join(dir, FileName) }

// Open opens (creating it 0600 when missing) the database at path and starts
// its writer. It fails when path is not a regular file, is locked by
// another program for longer than a second, or is not a SQLite database;
// the caller then runs without history.
func Open(path string, opts Options) (*Store, error) {
	if err := prepareFile(path); err != nil {
		return nil, err
	}
	// WAL with synchronous=NORMAL: a commit is one append to the log, and a
	// killed process loses nothing committed (only a power cut may).
	dsn := "file:" + filepath.ToSlash(path) +
		"?_pragma=busy_timeout(1000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(OFF)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("opening the history database %s: %w", path, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("the history database %s cannot be used (locked by another program, or not a ccmux database: move it away to start a new one): %w", path, err)
	}
	os.Chmod(path, 0o600) // SQLite creates -wal and -shm with the database's mode
	s := &Store{
		db: db, path: path, log: opts.Logger, now: opts.Now, loc: opts.Location, retention: opts.Retention,
		queue: make(chan item, queueSize), flushReq: make(chan chan struct{}),
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.loc == nil {
		s.loc = time.Local
	}
	go s.run()
	return s, nil
}

// prepareFile creates path's directory (0700) and the file itself (0600),
// so SQLite never creates it with the umask's mode, and refuses anything
// but a regular file.
func prepareFile(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("creating the directory of the history database %s: %w", path, err)
	}
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("creating the history database %s: %w", path, err)
		}
		return f.Close()
	case err != nil:
		return fmt.Errorf("the history database %s: %w", path, err)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("the history database %s is not a regular file; move it away to start a new one", path)
	}
	return nil
}

const schema = `
CREATE TABLE IF NOT EXISTS requests (
	id          INTEGER PRIMARY KEY,
	time        INTEGER NOT NULL, -- Unix milliseconds
	model       TEXT NOT NULL,
	provider    TEXT NOT NULL,
	model_sent  TEXT NOT NULL,
	failover    TEXT NOT NULL,
	status      INTEGER NOT NULL,
	ttfb_ms     INTEGER,
	duration_ms INTEGER NOT NULL,
	input_tokens       INTEGER,
	output_tokens      INTEGER,
	cache_read_tokens  INTEGER,
	cache_write_tokens INTEGER
);
CREATE INDEX IF NOT EXISTS requests_time ON requests(time);
-- daily is requests summed per local day and model, kept in step in the
-- same transaction: /api/stats reads a few hundred rows, not 150,000.
CREATE TABLE IF NOT EXISTS daily (
	day         TEXT NOT NULL, -- YYYY-MM-DD in the machine's zone
	model       TEXT NOT NULL,
	requests    INTEGER NOT NULL,
	input_tokens       INTEGER NOT NULL,
	output_tokens      INTEGER NOT NULL,
	cache_read_tokens  INTEGER NOT NULL,
	cache_write_tokens INTEGER NOT NULL,
	PRIMARY KEY (day, model)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS usage (
	time        INTEGER NOT NULL, -- Unix milliseconds
	login       TEXT NOT NULL,
	window      TEXT NOT NULL,
	utilization REAL NOT NULL,
	resets_at   INTEGER -- Unix milliseconds
);
CREATE INDEX IF NOT EXISTS usage_time ON usage(time);
`

// Record queues r for writing and returns at once. When the queue is full
// the record is dropped and counted (see Dropped): the request it describes
// is never delayed.
func (s *Store) Record(r Request) {
	if s == nil {
		return
	}
	select {
	case s.queue <- item{req: r, isReq: true}:
	default:
		s.dropped.Add(1)
	}
}

// RecordUsage queues a usage sample, as Record does.
func (s *Store) RecordUsage(u UsageSample) {
	if s == nil {
		return
	}
	select {
	case s.queue <- item{usage: u}:
	default:
		s.dropped.Add(1)
	}
}

// Dropped is the number of records dropped because the queue was full.
func (s *Store) Dropped() int64 {
	if s == nil {
		return 0
	}
	return s.dropped.Load()
}

// Path is the database file.
func (s *Store) Path() string {
	if s == nil {
		return ""
	}
	return s.path
}

// Flush writes every record queued before it and returns when they are
// committed (tests, and the dashboard before it reads after a request).
func (s *Store) Flush() {
	if s == nil {
		return
	}
	done := make(chan struct{})
	select {
	case s.flushReq <- done:
		<-done
	case <-s.done:
	}
}

// Close writes what is queued and closes the database.
func (s *Store) Close() error {
	if s == nil {
		return nil
	}
	s.once.Do(func() { close(s.stop) })
	<-s.done
	return s.db.Close()
}

// run is the writer: it batches queued records into one transaction each
// and prunes old records every pruneEvery.
func (s *Store) run() {
	defer close(s.done)
	batch := make([]item, 0, batchSize)
	timer := time.NewTimer(flushEvery)
	timer.Stop()
	prune := time.NewTicker(pruneEvery)
	defer prune.Stop()
	s.prune()
	flush := func() {
		if len(batch) > 0 {
			if err := s.write(batch); err != nil {
				s.log.Warn("could not write the request history; these records are lost", "records", len(batch), "err", err)
			}
			batch = batch[:0]
		}
		timer.Stop()
		s.reportDrops()
	}
	drain := func() {
		for {
			select {
			case it := <-s.queue:
				batch = append(batch, it)
				if len(batch) >= batchSize {
					flush()
				}
			default:
				flush()
				return
			}
		}
	}
	for {
		select {
		case it := <-s.queue:
			if len(batch) == 0 {
				timer.Reset(flushEvery)
			}
			batch = append(batch, it)
			if len(batch) >= batchSize {
				flush()
			}
		case <-timer.C:
			flush()
		case done := <-s.flushReq:
			drain()
			close(done)
		case <-prune.C:
			s.prune()
		case <-s.stop:
			drain()
			return
		}
	}
}

// write stores a batch in one transaction.
func (s *Store) write(batch []item) error {
	ctx := context.Background()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	insReq, err := tx.PrepareContext(ctx, `INSERT INTO requests (time, model, provider, model_sent, failover, status, ttfb_ms, duration_ms,
		input_tokens, output_tokens, cache_read_tokens, cache_write_tokens) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)`)
	if err != nil {
		return err
	}
	defer insReq.Close()
	addDay, err := tx.PrepareContext(ctx, `INSERT INTO daily (day, model, requests, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens)
		VALUES (?,?,1,?,?,?,?) ON CONFLICT (day, model) DO UPDATE SET requests = requests + 1,
		input_tokens = input_tokens + excluded.input_tokens, output_tokens = output_tokens + excluded.output_tokens,
		cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens, cache_write_tokens = cache_write_tokens + excluded.cache_write_tokens`)
	if err != nil {
		return err
	}
	defer addDay.Close()
	insUsage, err := tx.PrepareContext(ctx, `INSERT INTO usage (time, login, window, utilization, resets_at) VALUES (?,?,?,?,?)`)
	if err != nil {
		return err
	}
	defer insUsage.Close()
	for _, it := range batch {
		if !it.isReq {
			u := it.usage
			var resets any
			if !u.ResetsAt.IsZero() {
				resets = u.ResetsAt.UnixMilli()
			}
			if _, err := insUsage.ExecContext(ctx, u.Time.UnixMilli(), u.Login, u.Window, u.Utilization, resets); err != nil {
				return err
			}
			continue
		}
		r := it.req
		var ttfb any
		if r.TTFB > 0 {
			ttfb = r.TTFB.Milliseconds()
		}
		var in, out, cr, cw any
		if r.TokensKnown {
			in, out, cr, cw = r.Input, r.Output, r.CacheRead, r.CacheWrite
		}
		if _, err := insReq.ExecContext(ctx, r.Time.UnixMilli(), r.Model, r.Provider, r.ModelSent, r.Failover, r.Status, ttfb,
			r.Duration.Milliseconds(), in, out, cr, cw); err != nil {
			return err
		}
		if _, err := addDay.ExecContext(ctx, s.day(r.Time), StatsModel(r.Model, r.ModelSent), r.Input, r.Output, r.CacheRead, r.CacheWrite); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// StatsModel is the model a request counts under in the totals: the one
// that served it, or the one asked for when none did.
func StatsModel(asked, sent string) string {
	if sent != "" {
		return sent
	}
	return asked
}

// day is t's date in the store's zone.
func (s *Store) day(t time.Time) string { return t.In(s.loc).Format(time.DateOnly) }

// retentionDays is the configured retention or its default.
func (s *Store) retentionDays() int {
	if s.retention != nil {
		if d := s.retention(); d > 0 {
			return d
		}
	}
	return DefaultRetentionDays
}

// prune deletes records older than the retention.
func (s *Store) prune() {
	days := s.retentionDays()
	now := s.now()
	cutoff := now.AddDate(0, 0, -days)
	firstDay := s.day(now.In(s.loc).AddDate(0, 0, -days+1))
	ctx := context.Background()
	for _, q := range []struct {
		sql string
		arg any
	}{
		{`DELETE FROM requests WHERE time < ?`, cutoff.UnixMilli()},
		{`DELETE FROM usage WHERE time < ?`, cutoff.UnixMilli()},
		{`DELETE FROM daily WHERE day < ?`, firstDay},
	} {
		if _, err := s.db.ExecContext(ctx, q.sql, q.arg); err != nil {
			s.log.Warn("could not prune the request history", "err", err)
			return
		}
	}
}
