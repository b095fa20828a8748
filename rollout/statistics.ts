// The arithmetic of a rollout's judgement, pure: Prometheus's histogram quantile and the sums of histograms,
// and the log likelihood ratios the sequential tests add up.

/** Requests at or under `le` milliseconds, cumulative; the last bucket is `le: Infinity` (Prometheus's +Inf). */
export interface LatencyBucket {
    readonly le: number;
    readonly count: number;
}

/**
 * `histogram_quantile` as Prometheus computes it: the rank's bucket, linear within it, the lower edge of the first
 * bucket taken as 0, and a rank in the +Inf bucket answered with the highest finite bound. Undefined without data.
 */
export function histogramQuantile(q: number, buckets: readonly LatencyBucket[]): number | undefined {
    const total = buckets.at(-1)?.count ?? 0;
    if (total <= 0 || buckets.at(-1)?.le !== Infinity) return undefined;
    const rank = q * total;
    const index = buckets.findIndex((b) => b.count >= rank);
    if (index === buckets.length - 1) return buckets.length > 1 ? buckets[index - 1].le : undefined;
    const upper = buckets[index];
    const lowerEdge = index === 0 ? 0 : buckets[index - 1].le;
    const below = index === 0 ? 0 : buckets[index - 1].count;
    if (index === 0 && upper.le <= 0) return upper.le;
    const inBucket = upper.count - below;
    return inBucket <= 0 ? upper.le : lowerEdge + (upper.le - lowerEdge) * ((rank - below) / inBucket);
}

/** Requests slower than `le` (which must be one of the buckets' bounds). */
export function slowerThan(buckets: readonly LatencyBucket[], le: number): number {
    const total = buckets.at(-1)?.count ?? 0;
    const within = buckets.find((b) => b.le === le)?.count ?? total;
    return Math.max(0, total - within);
}

/** Sums two histograms over the same bounds (or either, when the other is empty). */
export function addBuckets(a: readonly LatencyBucket[], b: readonly LatencyBucket[]): LatencyBucket[] {
    if (a.length === 0) return [...b];
    if (b.length === 0) return [...a];
    const bounds = [...new Set([...a, ...b].map((x) => x.le))].sort((x, y) => x - y);
    // A bound one side lacks is read at its next bound up, as a cumulative histogram is.
    const at = (h: readonly LatencyBucket[], le: number) => h.find((x) => x.le >= le)?.count ?? h.at(-1)?.count ?? 0;
    return bounds.map((le) => ({ le, count: at(a, le) + at(b, le) }));
}

/**
 * The log likelihood ratio of `events` in `trials` Bernoulli trials, under "each is an event with probability
 * p1" against "with p0". Counts may be fractional (Prometheus's `increase` extrapolates).
 */
export function bernoulliLogRatio(events: number, trials: number, p0: number, p1: number): number {
    const misses = Math.max(0, trials - events);
    return events * Math.log(p1 / p0) + misses * Math.log((1 - p1) / (1 - p0));
}

/** A rate from counts that is never 0 or 1 (Jeffreys' estimate), so a ratio against it stays finite. */
export function smoothedRate(events: number, trials: number): number {
    return (events + 0.5) / (trials + 1);
}
