"""The metrics bench stage runs standalone on a tiny synthetic warehouse (a smoke test, not a benchmark)."""

from bench import stage_metrics


def test_stage_runs_standalone_and_reports_side_by_side(tmp_path):
    assert stage_metrics.NAME == "metrics"
    result = stage_metrics.run(tmp_path, customers=300, events=20_000, seed=3)
    assert result["events"] == 20_000 and result["weekly_rows"] > 0 and result["yearly_rows"] > 0
    for key in ("weekly_s", "yearly_s", "plain_scan_s", "ratio_weekly", "ratio_yearly", "peak_rss_mb",
                "ratio_weekly_cpu", "ratio_yearly_cpu"):
        assert result[key] > 0
    again = stage_metrics.run(tmp_path, customers=300, events=20_000, seed=3)   # reuses the warehouse
    assert again["build_s"] == 0 and again["weekly_rows"] == result["weekly_rows"]
