/**
 * docker/Dockerfile read with dockerfile-ast (the parser behind the Docker
 * language server) into stages of instructions, ARG defaults expanded in FROM
 * lines as `docker build` expands them; plus dockerfile-utils' validation.
 */
import { readFileSync } from 'node:fs';
import { DockerfileParser, type Instruction } from 'dockerfile-ast';
import { validate } from 'dockerfile-utils';

export interface DockerInstruction {
  keyword: string;
  line: number;
  /** The arguments as one string, without the flags, line continuations joined. */
  text: string;
  /** Exec form (["a", "b"]), parsed; undefined for shell form. */
  exec?: string[];
  /** `--name=value` flags (COPY --from, HEALTHCHECK --interval, ...). */
  flags: Record<string, string>;
}

export interface DockerStage {
  name?: string;
  /** The base image, ARG defaults expanded. */
  image: string;
  instructions: DockerInstruction[];
}

export interface ParsedDockerfile {
  stages: DockerStage[];
  /** dockerfile-utils' diagnostics: syntax errors, unknown instructions and flags, bad ports, ... */
  problems: string[];
}

function execForm(text: string): string[] | undefined {
  if (!text.trim().startsWith('[')) return undefined;
  const parsed = JSON.parse(text) as unknown;
  return Array.isArray(parsed) && parsed.every((x) => typeof x === 'string') ? parsed : undefined;
}

function flagsOf(ins: Instruction): Record<string, string> {
  const out: Record<string, string> = {};
  const getFlags = (ins as unknown as { getFlags?: () => { getName(): string; getValue(): string | null }[] }).getFlags;
  for (const f of getFlags?.call(ins) ?? []) out[f.getName()] = f.getValue() ?? '';
  return out;
}

export function parseDockerfile(file: string): ParsedDockerfile {
  const text = readFileSync(file, 'utf8');
  const df = DockerfileParser.parse(text);
  const args = new Map<string, string>();
  for (const a of df.getInitialARGs()) {
    const p = a.getProperty();
    if (p?.getName() && p.getValue() !== null) args.set(p.getName(), p.getValue() as string);
  }
  const expand = (s: string): string => s.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a: string, b: string) => args.get(a ?? b) ?? '');
  const stages: DockerStage[] = [];
  for (const ins of df.getInstructions()) {
    const keyword = ins.getKeyword().toUpperCase();
    if (keyword === 'FROM') {
      const [image, as, name] = (ins.getArgumentsContent() ?? '').trim().split(/\s+/);
      stages.push({ image: expand(image), name: as?.toUpperCase() === 'AS' ? name : undefined, instructions: [] });
      continue;
    }
    const stage = stages.at(-1);
    if (!stage) continue; // ARGs before the first FROM
    const flags = flagsOf(ins);
    const argText = (ins.getArgumentsContent() ?? '').trim();
    let exec = execForm(argText);
    if (keyword === 'HEALTHCHECK') {
      const m = /^CMD\s+([\s\S]*)$/i.exec(argText);
      exec = m ? execForm(m[1]) : undefined;
    }
    stage.instructions.push({ keyword, line: ins.getRange().start.line + 1, text: argText, exec, flags });
  }
  const problems = validate(text).map((d) => `line ${d.range.start.line + 1}: ${d.message}`);
  return { stages, problems };
}

/** Instructions of a stage with a given keyword. */
export function all(stage: DockerStage, keyword: string): DockerInstruction[] {
  return stage.instructions.filter((i) => i.keyword === keyword);
}
