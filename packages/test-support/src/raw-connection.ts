/** Raw bytes both ways on one connection (pipelining): the one raw client lives in @flexilib/plugin-abi/conformance. */
export { RawConnection, responseBody, responseStatus } from '@flexilib/plugin-abi/conformance';
