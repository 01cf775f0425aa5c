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
import os from 'node:os';

const PT_LOAD = 1;
const SHT_NOBITS = 8;

/** null when `buf` holds a complete 64-bit little-endian ELF file, else why not.
 * Other classes and byte orders pass through: elfArchProblem names them. */
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

/** ELF e_machine values by name, and the one each Node architecture runs. */
const MACHINES: Record<number, string> = { 3: 'x86 (i386)', 8: 'MIPS', 20: 'PowerPC', 21: 'PowerPC64', 22: 's390', 40: 'ARM (32-bit)', 62: 'x86-64', 183: 'AArch64 (arm64)', 243: 'RISC-V', 258: 'LoongArch' };
const HOST_MACHINE: Partial<Record<NodeJS.Architecture, { machine: number; class64: boolean; little: boolean }>> = {
  x64: { machine: 62, class64: true, little: true },
  arm64: { machine: 183, class64: true, little: true },
  ia32: { machine: 3, class64: false, little: true },
  arm: { machine: 40, class64: false, little: true },
  riscv64: { machine: 243, class64: true, little: true },
  ppc64: { machine: 21, class64: true, little: os.endianness() === 'LE' },
  s390x: { machine: 22, class64: true, little: false },
  loong64: { machine: 258, class64: true, little: true },
};

/**
 * null when the ELF file `buf` (already known to be ELF) is built for this
 * process's architecture, else which one it is built for. dlopen's own answer
 * for a foreign library is misleading (glibc may say "No such file or
 * directory" after skipping it), so the cause is named before dlopen.
 */
export function elfArchProblem(buf: Uint8Array, arch: NodeJS.Architecture = process.arch): string | null {
  const host = HOST_MACHINE[arch];
  if (!host || buf.length < 20) return null;
  const class64 = buf[4] === 2;
  const little = buf[5] === 1;
  const machine = little ? buf[18] | (buf[19] << 8) : (buf[18] << 8) | buf[19];
  const hostName = `${MACHINES[host.machine]}, ${host.class64 ? '64' : '32'}-bit, ${host.little ? 'little' : 'big'}-endian`;
  if (machine !== host.machine) {
    return `built for ${MACHINES[machine] ?? `ELF machine ${machine}`}, but this host is ${hostName} (${arch}): build the library for ${arch}`;
  }
  if (class64 !== host.class64) return `a ${class64 ? '64' : '32'}-bit library, but this host is ${hostName} (${arch})`;
  if (little !== host.little) return `a ${little ? 'little' : 'big'}-endian library, but this host is ${hostName} (${arch})`;
  return null;
}
