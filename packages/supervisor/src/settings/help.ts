/** `flexilib --help`, rendered from the settings table. */
import { GROUPS, type Setting, type SettingGroup, type SettingTable } from './setting.js';
import { SETTINGS } from './table.js';

/** Where an option's help starts, where its [ENV, default] note aligns, and the widest line. */
export interface HelpColumns {
  help: number;
  note: number;
  width: number;
}
const SERVER_COLUMNS: HelpColumns = { help: 29, note: 64, width: 110 };
/** The narrower layout of `flexilib invoke --help` and `flexilib conformance --help`. */
export const SUBCOMMAND_COLUMNS: HelpColumns = { help: 24, note: 55, width: 100 };

/** The option as help names it: "-c, --config FILE", "    --no-watch", or "" for a variable only. */
function optionText(s: Setting<unknown>): string {
  if (!s.flag) return '';
  return `${s.short ? `-${s.short}, ` : '    '}--${s.flag}${s.arg ? ` ${s.arg}` : ''}`;
}

/** [ENV, default X], [ENV=0] for a --no-... flag's variable, or '' when there is neither. */
function noteOf(s: Setting<unknown>): string {
  if (!s.env) return s.parse && s.shown ? `[default ${s.shown}]` : '';
  if (!s.flag) return `[${s.env}, environment only]`;
  if (!s.arg) return `[${s.env}=0]`;
  return `[${s.env}, default ${s.shown}]`;
}

/** One option's help lines, its note beside the last line when it fits. */
export function optionHelp(s: Setting<unknown>, cols: HelpColumns = SERVER_COLUMNS): string {
  const head = `  ${optionText(s)}`;
  // An option far past the help column (--cluster's address) has its help start on the next line.
  const own = head.length > cols.help + 4;
  const lines = s.help.map((h, i) => (i === 0 && !own ? head.padEnd(Math.max(cols.help, head.length + 1)) : ' '.repeat(cols.help)) + h);
  if (own) lines.unshift(head);
  const note = noteOf(s);
  if (note) {
    const last = lines[lines.length - 1];
    const beside = last.padEnd(Math.max(cols.note, last.length + 1)) + note;
    if (beside.length <= cols.width) lines[lines.length - 1] = beside;
    else lines.push(' '.repeat(cols.note) + note);
  }
  return lines.join('\n');
}

/** The table's settings by group, in GROUPS order, empty groups left out. */
export function byGroup(table: SettingTable): Array<[SettingGroup, Setting<unknown>[]]> {
  return (Object.keys(GROUPS) as SettingGroup[])
    .map((g): [SettingGroup, Setting<unknown>[]] => [g, Object.values(table).filter((s) => s.group === g)])
    .filter(([, list]) => list.length > 0);
}

export const HELP = `Usage: flexilib [options]
       flexilib invoke LIB [options]       call a plugin once, no server (flexilib invoke --help)
       flexilib conformance LIB [options]  run a request/response table against a plugin (--help)

Serves HTTP by calling native plugins (.so) chosen by proxy.ini.

Options (flags override environment variables):
${byGroup(SETTINGS).map(([g, list]) => `\n${GROUPS[g]}:\n${list.map((s) => optionHelp(s)).join('\n')}\n`).join('')}
Signals: SIGHUP re-reads the config (an invalid one is logged and the old one keeps serving) and lifts
quarantines; SIGTERM/SIGINT stop gracefully (a second one stops at once). Library files are watched and
reloaded when they change. systemd Type=notify: READY, RELOADING, STOPPING and WATCHDOG (WATCHDOG_USEC)
are sent to $NOTIFY_SOCKET when it is set.
`;
