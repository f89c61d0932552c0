/**
 * A plain-text table for a terminal or a log: a header row, columns padded to their widest cell, long
 * cells cut with an ellipsis at their column's `max`, line breaks in a cell shown as spaces.
 *
 * @example
 * ```ts
 * table([{ title: 'id' }, { title: 'error', max: 60 }], [['m-1', 'schema: amount: expected number']]);
 * ```
 */
export function table(
  columns: readonly { readonly title: string; readonly max?: number }[],
  rows: readonly (readonly string[])[],
): string {
  const cell = (text: string, max = Number.POSITIVE_INFINITY) => {
    const flat = text.replace(/\s+/g, ' ');
    return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
  };
  const cells = rows.map((row) => columns.map((c, i) => cell(row[i] ?? '', c.max)));
  const widths = columns.map((c, i) => Math.max(c.title.length, ...cells.map((row) => row[i]?.length ?? 0)));
  const line = (row: readonly string[]) =>
    row
      .map((text, i) => (i === row.length - 1 ? text : text.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return `${[line(columns.map((c) => c.title)), ...cells.map(line)].join('\n')}\n`;
}
