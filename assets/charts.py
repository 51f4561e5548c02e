"""Charts: the PNGs each customer's e-mail and share page show (matplotlib via ``charts/``)."""


import base64

import dagster as dg

from assets._common import markdown_table, period_of, progress_to
from pipelines.partitions import PARTITIONS
from pipelines.resources import WRITER_POOL, ValuemailResource
from valuemail.emails import render_period_charts


def build_chart_assets(campaign: str) -> list[dg.AssetsDefinition]:
    @dg.asset(
        key=[campaign, "charts"],
        partitions_def=PARTITIONS[campaign],
        deps=[dg.AssetKey([campaign, "eligibility"]), dg.AssetKey([campaign, "customer_metrics"])],
        group_name="emails",
        kinds={"matplotlib", "png"},
        owners=["team:growth"],
        pool=WRITER_POOL,
    )
    def charts(context: dg.AssetExecutionContext, valuemail: ValuemailResource) -> dg.MaterializeResult:
        """Per-customer chart PNGs (activity, "you are here" among peers, the year by month, the share card).

        Drawn for every customer whose decision is ``send``, in the customer's language, under
        ``<home>/charts/<campaign>/<period>/<kind>/``; one ``email_charts`` row per PNG.
        """
        period = period_of(context, campaign)
        config = valuemail.load()
        # the warehouse is opened only to read the customers and to store the rows: not while drawing
        summary = render_period_charts(valuemail.warehouse, config, period, progress=progress_to(context))
        with valuemail.warehouse() as con:
            table = markdown_table(
                con,
                "SELECT kind, count(*) AS charts, round(avg(png_bytes)) AS avg_png_bytes FROM email_charts "
                "WHERE campaign = ? AND period = ? GROUP BY kind ORDER BY kind",
                [campaign, period.start],
            )
        metadata: dict = {
            "dagster/row_count": summary.charts,
            "customers": summary.customers,
            "workers": summary.workers,
            "peer_charts_drawn": summary.peer_drawn,
            "by_kind": table,
            "folder": dg.MetadataValue.path(str(summary.folder)),
        }
        if summary.sample is not None:
            png = base64.b64encode(summary.sample.read_bytes()).decode("ascii")
            metadata["sample_chart"] = dg.MetadataValue.md(f"![sample chart](data:image/png;base64,{png})")
        return dg.MaterializeResult(metadata=metadata)

    return [charts]
