/**
 * Errors of the release build, each with a stable code. Match on `code`.
 *
 *   FLX_RELEASE_NOT_BUILT      compiled JS or an example plugin is missing: run `pnpm build` first
 *                              (`pnpm run release` does)
 *   FLX_RELEASE_DEPLOY         `pnpm deploy` of the production dependencies failed
 *   FLX_RELEASE_PLUGIN_CLASH   two examples build a library with the same file name
 *   FLX_RELEASE_CONFIG         the bundled proxy.ini is invalid or names a library the tarball lacks
 *   FLX_RELEASE_TAR            tar failed
 *   FLX_RELEASE_SIGN           the signing key is missing or ssh-keygen -Y sign failed (or is not installed)
 *   FLX_RELEASE_USAGE          bad command-line argument
 */
export type ReleaseErrorCode =
  | 'FLX_RELEASE_NOT_BUILT'
  | 'FLX_RELEASE_DEPLOY'
  | 'FLX_RELEASE_PLUGIN_CLASH'
  | 'FLX_RELEASE_CONFIG'
  | 'FLX_RELEASE_TAR'
  | 'FLX_RELEASE_SIGN'
  | 'FLX_RELEASE_USAGE';

export class ReleaseError extends Error {
  constructor(readonly code: ReleaseErrorCode, message: string) {
    super(message);
    this.name = 'ReleaseError';
  }
}
