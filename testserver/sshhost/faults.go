package sshhost

// Faults: a host going down and coming back up, and a host cut off the
// network and reconnected.

import (
	"context"
	"errors"
	"fmt"
)

// Down takes the host down as if it lost power: its link goes down
// (ModeNetns; connections to it then fail with "no route to host" or time
// out), and sshd, its connections and every process started through it are
// killed. Files stay. Up brings it back with a fresh sshd; nothing else is
// restarted. Down is bounded by the host's timeout; see DownContext.
func (h *Host) Down() error {
	ctx, cancel := h.bound(context.Background())
	defer cancel()
	return h.DownContext(ctx)
}

// DownContext is Down bounded by ctx. It returns once every process of the
// host is gone, or with an error naming those still alive.
func (h *Host) DownContext(ctx context.Context) error {
	ctx, cancel := h.bound(ctx)
	defer cancel()
	if err := h.lock(ctx, "down"); err != nil {
		return err
	}
	defer h.mu.Unlock()
	h.dropClient()
	var errs []error
	if h.Mode == ModeNetns && !h.closed {
		// Link first: peers see the host vanish, not closing connections.
		errs = append(errs, h.setLink(ctx, false))
	}
	errs = append(errs, h.stopSSHD(ctx), h.killProcesses(ctx))
	return h.errorf("down", errors.Join(errs...))
}

// Up brings a host taken Down back: link up and sshd running and reachable,
// bounded by ctx (by the host's timeout when ctx has no deadline).
func (h *Host) Up(ctx context.Context) error {
	ctx, cancel := h.bound(ctx)
	defer cancel()
	if err := h.lock(ctx, "up"); err != nil {
		return err
	}
	defer h.mu.Unlock()
	if h.closed {
		return fmt.Errorf("sshhost: %s: up: host is closed", h.Name)
	}
	if h.Mode == ModeNetns {
		if err := h.setLink(ctx, true); err != nil {
			return h.errorf("up", err)
		}
	}
	if h.sshdRunning() {
		return h.errorf("up", h.waitReachable(ctx))
	}
	return h.errorf("up", h.startSSHD(ctx))
}

// Disconnect cuts the host off the network while everything on it keeps
// running (a partition). ModeNetns only. Bounded by the host's timeout; see
// DisconnectContext.
func (h *Host) Disconnect() error {
	ctx, cancel := h.bound(context.Background())
	defer cancel()
	return h.DisconnectContext(ctx)
}

// DisconnectContext is Disconnect bounded by ctx.
func (h *Host) DisconnectContext(ctx context.Context) error {
	if h.Mode != ModeNetns {
		return ErrNotSupported
	}
	ctx, cancel := h.bound(ctx)
	defer cancel()
	if err := h.lock(ctx, "disconnect"); err != nil {
		return err
	}
	defer h.mu.Unlock()
	return h.errorf("disconnect", h.setLink(ctx, false))
}

// Reconnect undoes Disconnect and returns once the host answers on its
// address again. Bounded by the host's timeout; see ReconnectContext.
func (h *Host) Reconnect() error {
	ctx, cancel := h.bound(context.Background())
	defer cancel()
	return h.ReconnectContext(ctx)
}

// ReconnectContext is Reconnect bounded by ctx.
func (h *Host) ReconnectContext(ctx context.Context) error {
	if h.Mode != ModeNetns {
		return ErrNotSupported
	}
	ctx, cancel := h.bound(ctx)
	defer cancel()
	if err := h.lock(ctx, "reconnect"); err != nil {
		return err
	}
	defer h.mu.Unlock()
	if err := h.setLink(ctx, true); err != nil {
		return h.errorf("reconnect", err)
	}
	return h.errorf("reconnect", h.waitReachable(ctx))
}

// setLink takes the host's side of the veth down or up. Down, packets to
// the host are dropped after failed neighbour resolution, as for a machine
// that lost power on the same segment: connects fail with "no route to
// host" or time out. (Taking the root side down instead would remove the
// route, and traffic would leak to the root namespace's default route.)
func (h *Host) setLink(ctx context.Context, up bool) error {
	if !up {
		return ip(ctx, "-n", h.Namespace, "link", "set", "eth0", "down")
	}
	if err := ip(ctx, "-n", h.Namespace, "link", "set", "eth0", "up"); err != nil {
		return err
	}
	// Neighbour entries the root side made while the host was away are
	// FAILED or still resolving; the first connections would fail with "no
	// route to host". Best effort: waitReachable copes without it.
	_ = ip(ctx, "neigh", "flush", "dev", h.rootLink)
	// The default route went away with the link.
	return ip(ctx, "-n", h.Namespace, "route", "replace", "default", "via", h.gateway)
}
