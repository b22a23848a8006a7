package history

import (
	"context"
	"database/sql"
	"time"
)

// StoredRequest is a recorded request as the dashboard and
// GET /api/requests show it. Unknown token counts and TTFB are nil.
type StoredRequest struct {
	ID         int64     `json:"id"`
	Time       time.Time `json:"time"`
	Model      string    `json:"model"`
	Provider   string    `json:"provider"`
	ModelSent  string    `json:"model_sent"`
	Status     int       `json:"status"`
	TTFBMS     *int64    `json:"ttfb_ms"`
	DurationMS int64     `json:"duration_ms"`
	Input      *int64    `json:"input_tokens"`
	Output     *int64    `json:"output_tokens"`
	CacheRead  *int64    `json:"cache_read_input_tokens"`
	CacheWrite *int64    `json:"cache_creation_input_tokens"`
	Failover   string    `json:"failover"`
}

// MaxPage is the most requests one Requests call returns.
const MaxPage = 500

// Requests returns up to limit requests older than before (an id; 0 for the
// newest), newest first.
func (s *Store) Requests(ctx context.Context, limit int, before int64) ([]StoredRequest, error) {
	out := []StoredRequest{}
	if s == nil {
		return out, nil
	}
	limit = min(max(limit, 1), MaxPage)
	if before <= 0 {
		before = 1<<63 - 1
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, time, model, provider, model_sent, status, ttfb_ms, duration_ms,
		input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, failover
		FROM requests WHERE id < ? ORDER BY id DESC LIMIT ?`, before, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var r StoredRequest
		var ms int64
		var ttfb, in, outTok, cr, cw sql.NullInt64
		if err := rows.Scan(&r.ID, &ms, &r.Model, &r.Provider, &r.ModelSent, &r.Status, &ttfb, &r.DurationMS,
			&in, &outTok, &cr, &cw, &r.Failover); err != nil {
			return nil, err
		}
		r.Time = time.UnixMilli(ms).UTC()
		r.TTFBMS, r.Input, r.Output, r.CacheRead, r.CacheWrite = ptr(ttfb), ptr(in), ptr(outTok), ptr(cr), ptr(cw)
		out = append(out, r)
	}
	return out, rows.Err()
}

func ptr(n sql.NullInt64) *int64 {
	if !n.Valid {
		return nil
	}
	return &n.Int64
}

// DayModel is one day's totals for one model.
type DayModel struct {
	Day        string `json:"day"` // YYYY-MM-DD, the machine's zone
	Model      string `json:"model"`
	Requests   int64  `json:"requests"`
	Input      int64  `json:"input_tokens"`
	Output     int64  `json:"output_tokens"`
	CacheRead  int64  `json:"cache_read_input_tokens"`
	CacheWrite int64  `json:"cache_creation_input_tokens"`
}

// Stats returns the totals per day and model of the last days days
// (today included), oldest day first.
func (s *Store) Stats(ctx context.Context, days int) ([]DayModel, error) {
	out := []DayModel{}
	if s == nil {
		return out, nil
	}
	days = max(days, 1)
	first := s.day(s.now().In(s.loc).AddDate(0, 0, -days+1))
	rows, err := s.db.QueryContext(ctx, `SELECT day, model, requests, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens
		FROM daily WHERE day >= ? ORDER BY day, model`, first)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var d DayModel
		if err := rows.Scan(&d.Day, &d.Model, &d.Requests, &d.Input, &d.Output, &d.CacheRead, &d.CacheWrite); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// UsageSeries is one login's window over time.
type UsageSeries struct {
	Login  string       `json:"login"`
	Window string       `json:"window"`
	Points []UsagePoint `json:"points"`
}

// UsagePoint is one sample of a series.
type UsagePoint struct {
	Time        time.Time  `json:"time"`
	Utilization float64    `json:"utilization"`
	ResetsAt    *time.Time `json:"resets_at"`
}

// Usage returns every login's windows sampled since since, one series per
// login and window, oldest sample first.
func (s *Store) Usage(ctx context.Context, since time.Time) ([]UsageSeries, error) {
	out := []UsageSeries{}
	if s == nil {
		return out, nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT time, login, window, utilization, resets_at FROM usage
		WHERE time >= ? ORDER BY login, window, time`, since.UnixMilli())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var ms int64
		var login, window string
		var p UsagePoint
		var resets sql.NullInt64
		if err := rows.Scan(&ms, &login, &window, &p.Utilization, &resets); err != nil {
			return nil, err
		}
		p.Time = time.UnixMilli(ms).UTC()
		if resets.Valid {
			t := time.UnixMilli(resets.Int64).UTC()
			p.ResetsAt = &t
		}
		if n := len(out); n == 0 || out[n-1].Login != login || out[n-1].Window != window {
			out = append(out, UsageSeries{Login: login, Window: window})
		}
		last := &out[len(out)-1]
		last.Points = append(last.Points, p)
	}
	return out, rows.Err()
}
