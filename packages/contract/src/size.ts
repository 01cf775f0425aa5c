/** Parse a size such as 1048576, 512k, 4m or 1g into bytes; undefined if malformed. */
export function parseSize(text: string): number | undefined {
  const m = /^(\d+)\s*([kmg]i?b?|b)?$/i.exec(text.trim());
  if (!m) return undefined;
  const unit = (m[2] ?? '').toLowerCase()[0];
  const mult = unit === 'k' ? 1024 : unit === 'm' ? 1024 ** 2 : unit === 'g' ? 1024 ** 3 : 1;
  return Number(m[1]) * mult;
}
