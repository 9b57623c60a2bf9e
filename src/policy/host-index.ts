const NONE: number[] = [];

/**
 * An index from host patterns to the positions of the entries (rules, callbacks, list items) that name
 * them, so a lookup costs one map probe per label of the host instead of a scan of every entry.
 * Exact patterns and `*.domain` patterns are kept apart; `*.domain` never matches `domain` itself.
 */
export class HostIndex {
  private readonly exact = new Map<string, number[]>();
  private readonly wildcard = new Map<string, number[]>();

  /** Adds entry `position` under each of `patterns` (canonical, lower-case). */
  add(position: number, patterns: readonly string[]): void {
    for (const pattern of patterns) {
      const map = pattern.startsWith('*.') ? this.wildcard : this.exact;
      const key = pattern.startsWith('*.') ? pattern.slice(2) : pattern;
      const list = map.get(key);
      if (!list) map.set(key, [position]);
      else if (list[list.length - 1] !== position) list.push(position);
    }
  }

  /** Whether any pattern matches `host`. */
  has(host: string): boolean {
    return this.first(host) !== undefined;
  }

  /** The lowest position whose patterns match `host`, or undefined. */
  first(host: string): number | undefined {
    let best = this.exact.get(host)?.[0];
    for (let dot = host.indexOf('.'); dot >= 0; dot = host.indexOf('.', dot + 1)) {
      const hit = this.wildcard.get(host.slice(dot + 1))?.[0];
      if (hit !== undefined && (best === undefined || hit < best)) best = hit;
    }
    return best;
  }

  /** Every position whose patterns match `host`, in ascending order (first match first). */
  all(host: string): number[] {
    const lists: number[][] = [];
    const exact = this.exact.get(host);
    if (exact) lists.push(exact);
    for (let dot = host.indexOf('.'); dot >= 0; dot = host.indexOf('.', dot + 1)) {
      const hit = this.wildcard.get(host.slice(dot + 1));
      if (hit) lists.push(hit);
    }
    if (lists.length === 0) return NONE;
    if (lists.length === 1) return lists[0]!;
    return [...new Set(lists.flat())].sort((a, b) => a - b);
  }
}
