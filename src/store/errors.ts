/** A store or hub failure the user can act on: printed as one line. */
export class StoreError extends Error {}
