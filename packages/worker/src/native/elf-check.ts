/**
 * Is this file a complete ELF object? dlopen of a truncated shared library does
 * not always fail cleanly: when the file ends inside a loadable segment, the
 * mapping succeeds and the loader's first touch of the missing pages raises
 * SIGBUS, killing the process. A library caught half-written (an in-place `cp`,
 * a slow writer) must instead fail to load and leave the old version serving,
 * so every offset the headers name is checked against the file's size first.
 *
 * Pure JavaScript (no koffi): the supervisor uses it too, before asking the
 * workers to reload.
 */

const PT_LOAD = 1;
const SHT_NOBITS = 8;

/** null when `buf` holds a complete 64-bit little-endian ELF file, else why not.
 * Other classes and byte orders pass through: dlopen refuses them cleanly. */
export function elfProblem(buf: Uint8Array): string | null {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const size = b.length;
  if (size < 4 || b[0] !== 0x7f || b[1] !== 0x45 || b[2] !== 0x4c || b[3] !== 0x46) {
    return size < 4 ? `file is ${size} bytes: too short for an ELF header (still being written?)` : 'not an ELF file';
  }
  if (size < 64) return `file is ${size} bytes: too short for an ELF header (still being written?)`;
  if (b[4] !== 2 || b[5] !== 1) return null;
  const u64 = (off: number): number => Number(b.readBigUInt64LE(off));
  const phoff = u64(32);
  const shoff = u64(40);
  const phentsize = b.readUInt16LE(54);
  const phnum = b.readUInt16LE(56);
  const shentsize = b.readUInt16LE(58);
  const shnum = b.readUInt16LE(60);
  const short = (what: string, end: number) => `${what} ends at byte ${end} but the file has ${size} bytes (truncated or still being written?)`;

  if (phoff + phnum * phentsize > size) return short('the program header table', phoff + phnum * phentsize);
  for (let i = 0; i < phnum; i++) {
    const p = phoff + i * phentsize;
    if (b.readUInt32LE(p) !== PT_LOAD) continue;
    const end = u64(p + 8) + u64(p + 32);
    if (end > size) return short(`loadable segment ${i}`, end);
  }
  if (shnum > 0 && shoff > 0) {
    if (shoff + shnum * shentsize > size) return short('the section header table', shoff + shnum * shentsize);
    for (let i = 0; i < shnum; i++) {
      const s = shoff + i * shentsize;
      if (b.readUInt32LE(s + 4) === SHT_NOBITS) continue;
      const end = u64(s + 24) + u64(s + 32);
      if (end > size) return short(`section ${i}`, end);
    }
  }
  return null;
}
