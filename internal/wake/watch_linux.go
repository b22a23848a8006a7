package wake

import (
	"errors"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// watch reports, on the channel it returns, what the kernel says changed:
// an IPv4 or IPv6 address (a netlink socket in the address groups), or the
// wall clock being set — which the kernel also says after a resume from
// suspend (a timerfd with TFD_TIMER_CANCEL_ON_SET is cancelled by both).
// Waiting for them costs nothing while idle. watching is false when either
// could not be opened (the ticker then looks often); stop closes them.
func watch() (changes <-chan struct{}, watching bool, stop func()) {
	ch := make(chan struct{}, 1)
	notify := func() {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	var files []*os.File
	if f, err := addressChanges(); err == nil {
		files = append(files, f)
		go func() {
			buf := make([]byte, 16<<10)
			for {
				_, err := f.Read(buf)
				if err != nil && !errors.Is(err, unix.ENOBUFS) { // ENOBUFS: messages were lost; look anyway
					return
				}
				notify()
			}
		}()
	}
	if f, err := clockChanges(); err == nil {
		files = append(files, f)
		go func() {
			var buf [8]byte
			for {
				_, err := f.Read(buf[:])
				if errors.Is(err, unix.ECANCELED) {
					notify()
				} else if err != nil {
					return
				}
				if armClock(f) != nil {
					return
				}
			}
		}()
	}
	return ch, len(files) == 2, func() {
		for _, f := range files {
			f.Close()
		}
	}
}

// addressChanges is a netlink socket that receives a message for each
// address added or removed.
func addressChanges() (*os.File, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, err
	}
	sa := &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: unix.RTMGRP_IPV4_IFADDR | unix.RTMGRP_IPV6_IFADDR}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return nil, err
	}
	// Non-blocking: reads wait in Go's poller, not on a thread.
	return os.NewFile(uintptr(fd), "netlink-route"), nil
}

// clockChanges is a timerfd whose reads fail with ECANCELED when the wall
// clock is set or the machine resumes.
func clockChanges() (*os.File, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_REALTIME, unix.TFD_CLOEXEC|unix.TFD_NONBLOCK)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "timerfd")
	if err := armClock(f); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// armClock sets the timer a year ahead (it is there to be cancelled, not
// to fire), cancelled on a change of the wall clock.
func armClock(f *os.File) error {
	sc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(time.Now().AddDate(1, 0, 0).UnixNano())}
	var serr error
	if err := sc.Control(func(fd uintptr) {
		serr = unix.TimerfdSettime(int(fd), unix.TFD_TIMER_ABSTIME|unix.TFD_TIMER_CANCEL_ON_SET, &spec, nil)
	}); err != nil {
		return err
	}
	return serr
}
