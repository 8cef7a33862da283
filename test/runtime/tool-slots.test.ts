import { describe, expect, it } from 'vitest';
import { ToolSlots } from '../../src/engine/runtime/tool-slots.ts';

describe('ToolSlots', () => {
  it('grants up to its capacity at once, then in arrival order as slots come back', async () => {
    const slots = new ToolSlots(2);
    expect(await Promise.all([slots.acquire(), slots.acquire()])).toEqual([true, true]);
    const order: number[] = [];
    const waiting = [1, 2, 3].map((n) => slots.acquire().then((granted) => order.push(granted ? n : -n)));
    expect(slots.waiting).toBe(3);
    slots.release();
    slots.release();
    await new Promise((resolve) => setImmediate(resolve));
    expect(order).toEqual([1, 2]);
    expect(slots.busy).toBe(2);
    slots.release();
    await Promise.all(waiting);
    expect(order).toEqual([1, 2, 3]);
    for (let i = 0; i < 3; i++) slots.release();
    expect(slots.busy).toBe(0);
  });

  it('an aborted wait leaves the queue at once, takes no slot, and the next in line gets the one given back', async () => {
    const slots = new ToolSlots(1);
    await slots.acquire();
    const canceled = new AbortController();
    const first = slots.acquire(canceled.signal);
    const second = slots.acquire();
    canceled.abort();
    expect(await first).toBe(false);
    expect(slots.waiting).toBe(1);
    slots.release();
    expect(await second).toBe(true);
    expect(slots.busy).toBe(1);
    expect(await slots.acquire(AbortSignal.abort())).toBe(false);
  });

  it('closing turns away every waiting call and every later one', async () => {
    const slots = new ToolSlots(1);
    await slots.acquire();
    const waiting = [slots.acquire(), slots.acquire()];
    slots.close();
    expect(await Promise.all(waiting)).toEqual([false, false]);
    expect(await slots.acquire()).toBe(false);
    expect(() => new ToolSlots(0)).toThrow(/positive integer/);
  });
});
