// A Helm chart as this program pins it.
/** A chart at a pinned version: in a repository, or an OCI reference in `chart` (no `repo`). */
export interface HelmChart {
    readonly repo?: string;
    readonly chart: string;
    readonly version: string;
}

