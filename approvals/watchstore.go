package approvals

import "context"

// AddWatch implements Store.
func (m *MemoryStore) AddWatch(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.watched == nil {
		m.watched = map[string]bool{}
	}
	m.watched[id] = true
	return nil
}

// RemoveWatch implements Store.
func (m *MemoryStore) RemoveWatch(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.watched, id)
	return nil
}

// Watched implements Store. IDs whose record has passed its retention are dropped on the way.
func (m *MemoryStore) Watched(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var ids []string
	for id := range m.watched {
		if _, ok := m.liveRecord(id); ok {
			ids = append(ids, id)
		} else {
			delete(m.watched, id)
		}
	}
	return ids, nil
}
