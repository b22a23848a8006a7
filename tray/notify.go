package tray

import (
	"log/slog"
	"sync"

	"github.com/gen2brain/beeep"

	"ccmux/assets"
)

// beeepNotifier shows notifications with beeep, as "ccmux" with the app icon.
// It never calls beeep.Beep or beeep.Alert: their fallback writes a BEL byte to stdout.
type beeepNotifier struct{}

var setAppName sync.Once

func newBeeepNotifier() Notifier {
	setAppName.Do(func() { beeep.AppName = "ccmux" })
	return beeepNotifier{}
}

func (beeepNotifier) Notify(title, message string) error {
	return beeep.Notify(title, message, assets.AppIcon())
}

// noteQueue delivers notifications in order on its own goroutine, so a slow
// or hung notification service never holds up the menu. Failures are logged.
type noteQueue struct {
	n     Notifier
	log   *slog.Logger
	queue chan note
	mu    sync.Mutex
	shut  bool
	done  chan struct{}
}

type note struct{ title, message string }

// noteBacklog is how many notifications may wait; more are dropped (and logged).
const noteBacklog = 16

func newNoteQueue(n Notifier, log *slog.Logger) *noteQueue {
	q := &noteQueue{n: n, log: log, queue: make(chan note, noteBacklog), done: make(chan struct{})}
	go q.run()
	return q
}

func (q *noteQueue) run() {
	defer close(q.done)
	for m := range q.queue {
		if err := q.n.Notify(m.title, m.message); err != nil {
			q.log.Warn("could not show a notification", "title", m.title, "err", err)
		}
	}
}

// send queues a notification without blocking.
func (q *noteQueue) send(title, message string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.shut {
		return
	}
	select {
	case q.queue <- note{title, message}:
	default:
		q.log.Warn("too many notifications waiting; dropped one", "title", title)
	}
}

// close stops taking notifications; those already queued are still shown
// while the process lives.
func (q *noteQueue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.shut {
		q.shut = true
		close(q.queue)
	}
}
