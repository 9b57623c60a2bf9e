/** Small helpers shared by the benchmarks: percentiles and a fixed-width table. */
export function percentile(sortedNs: Float64Array | number[], p: number): number {
  const i = Math.min(sortedNs.length - 1, Math.floor((p / 100) * sortedNs.length));
  return sortedNs[i]!;
}

export function table(title: string, header: string[], rows: Array<Array<string | number>>): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, c) => Math.max(...cells.map((r) => r[c]!.length)));
  const line = (r: string[]) => '| ' + r.map((c, i) => c.padStart(widths[i]!)).join(' | ') + ' |';
  return [`\n${title}`, line(header), '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|', ...cells.slice(1).map(line)].join('\n');
}

export const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
