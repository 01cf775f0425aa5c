export { resolveSettings, HELP, type Settings } from './settings.js';
export { SupervisorError, ERRORS, EXIT } from './errors.js';
