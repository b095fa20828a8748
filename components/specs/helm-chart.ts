// A Helm chart as this program pins it.
/** A chart in a repository, at a pinned version. */
export interface HelmChart {
    readonly repo: string;
    readonly chart: string;
    readonly version: string;
}

