/** Free loopback ports: shared with the one flexilib spawner (@flexilib/plugin-abi/conformance). */
export { freePort, freePorts } from '@flexilib/plugin-abi/conformance';
