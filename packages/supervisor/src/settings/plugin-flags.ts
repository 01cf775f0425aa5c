/** Flags `flexilib invoke` and `flexilib conformance` share beyond the server's own (settings/table.ts). */
import { PLUGIN_ABIS, type PluginAbi } from '@flexilib/contract';
import { setting, usage } from './setting.js';

export const ABI = setting<PluginAbi | undefined>({
  flag: 'abi', arg: 'ABI',
  parse: (t, name) => {
    if (!(PLUGIN_ABIS as readonly string[]).includes(t)) throw usage(`${name} "${t}" is not ${PLUGIN_ABIS.join(' or ')}`);
    return t as PluginAbi;
  },
  default: undefined, shown: 'detected',
  help: [`${PLUGIN_ABIS.join('|')}: the library's interface, as a`, "route's abi = sets it; undetected, FlexiLib's", 'when it exports zigInit and no', 'flexi_abi_version, else v1'],
  group: 'command',
});
