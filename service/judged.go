package service

import (
	"sync"
	"time"

	"github.com/patchgate/patchgate/policy"
)

// Bounds of the validator's memory (judgedCache). The OCI hook asks within
// a second or two of the validation on a healthy node; the expiry covers a
// node under heavy load, and the size a burst of creations much larger than
// any node runs at once. An entry that is gone makes the hook judge
// everything: safe, at worst a second audit record.
const (
	judgedLimit  = 8192
	judgedExpiry = 5 * time.Minute
)

// judgedEntry is what the NRI validator judged of one container, on the
// container as it will run (every plugin's adjustments applied).
type judgedEntry struct {
	fields  policy.Field
	auditID string
	at      time.Time
}

// judgedCache remembers, per container ID, the fields the NRI validator
// judged, so that the OCI hook it injected judges exactly the rest. Each
// entry is handed out once (take), expires after judgedExpiry, and the
// oldest entries go first when judgedLimit is reached.
type judgedCache struct {
	mu    sync.Mutex
	byID  map[string]judgedEntry
	order []judgedKey // insertion order, oldest first
}

type judgedKey struct {
	id string
	at time.Time
}

// remember records what the validator judged of container id at now.
func (c *judgedCache) remember(id string, fields policy.Field, auditID string, now time.Time) {
	if id == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byID == nil {
		c.byID = map[string]judgedEntry{}
	}
	c.evict(now)
	for len(c.byID) >= judgedLimit && len(c.order) > 0 {
		c.drop()
	}
	c.byID[id] = judgedEntry{fields: fields, auditID: auditID, at: now}
	c.order = append(c.order, judgedKey{id, now})
}

// take returns and forgets what the validator judged of container id; ok
// is false when it is unknown or expired.
func (c *judgedCache) take(id string, now time.Time) (judgedEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.evict(now)
	e, ok := c.byID[id]
	if !ok || id == "" {
		return judgedEntry{}, false
	}
	delete(c.byID, id)
	return e, true
}

// evict drops the expired entries from the front of the order.
func (c *judgedCache) evict(now time.Time) {
	for len(c.order) > 0 && now.Sub(c.order[0].at) > judgedExpiry {
		c.drop()
	}
	// Entries taken already leave their keys behind; compact now and then.
	if len(c.order) > 2*judgedLimit {
		kept := c.order[:0]
		for _, k := range c.order {
			if e, ok := c.byID[k.id]; ok && e.at.Equal(k.at) {
				kept = append(kept, k)
			}
		}
		c.order = kept
	}
}

// drop removes the oldest key and its entry, if the entry is still the one
// that key was recorded for (not replaced by a later remember).
func (c *judgedCache) drop() {
	k := c.order[0]
	c.order = c.order[1:]
	if e, ok := c.byID[k.id]; ok && e.at.Equal(k.at) {
		delete(c.byID, k.id)
	}
}

// len is the number of live entries (tests).
func (c *judgedCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byID)
}
