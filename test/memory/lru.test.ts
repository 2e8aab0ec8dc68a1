import { describe, expect, it } from 'vitest';
import { CostLru } from '../../src/memory/_lru.js';

describe('CostLru', () => {
  it('keeps the total cost within the budget, evicting the least recently used first', () => {
    const c = new CostLru<string, number>(10);
    c.set('a', 1, 4);
    c.set('b', 2, 4);
    expect(c.get('a')).toBe(1); // a is now the most recently used
    c.set('c', 3, 4); // 12 > 10: b goes, not a
    expect(c.get('b')).toBeUndefined();
    expect(c.get('a')).toBe(1);
    expect(c.get('c')).toBe(3);
    expect(c.cost).toBe(8);
  });

  it('re-setting a key replaces its cost; an item over the budget is kept alone', () => {
    const c = new CostLru<string, string>(10);
    c.set('a', 'x', 3);
    c.set('a', 'y', 5);
    expect(c.cost).toBe(5);
    expect(c.size).toBe(1);
    c.set('big', 'z', 50);
    expect(c.size).toBe(1);
    expect(c.get('big')).toBe('z');
    expect(c.cost).toBe(50);
  });
});
