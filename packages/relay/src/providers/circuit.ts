import type { CircuitConfig } from '../config/config.js';

export type CircuitState = 'closed' | 'open' | 'half_open';

/**
 * One provider's circuit breaker, in this relay process: `failures` failures in a row open it, and
 * for `openMs` the provider is skipped; then it is half-open: one request at a time probes it, a
 * success closes the circuit, a failure opens it for another `openMs`.
 */
export class CircuitBreaker {
  private failuresInRow = 0;
  private openedAt: number | undefined;
  private probing = false;

  constructor(
    private readonly config: CircuitConfig,
    private readonly now: () => number = () => performance.now(),
  ) {}

  get state(): CircuitState {
    if (this.openedAt === undefined) return 'closed';
    return this.now() - this.openedAt >= this.config.openMs ? 'half_open' : 'open';
  }

  /** A request may go to the provider now (closed, or half-open with no probe under way). */
  get available(): boolean {
    const state = this.state;
    return state === 'closed' || (state === 'half_open' && !this.probing);
  }

  /** A request goes to the provider: when half-open, it is the probe until its verdict. */
  acquire(): void {
    if (this.state === 'half_open') this.probing = true;
  }

  /** The provider answered (even with a request error: it is up). */
  success(): void {
    this.failuresInRow = 0;
    this.openedAt = undefined;
    this.probing = false;
  }

  /** The provider failed; true when this opened the circuit. */
  failure(): boolean {
    const wasClosed = this.openedAt === undefined;
    this.probing = false;
    this.failuresInRow++;
    if (!wasClosed || this.failuresInRow >= this.config.failures) this.openedAt = this.now();
    return wasClosed && this.openedAt !== undefined;
  }

  /** The request ended with no verdict (the turn was aborted): another may probe. */
  release(): void {
    this.probing = false;
  }
}
