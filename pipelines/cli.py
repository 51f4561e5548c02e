"""The ``valuemail`` command: a thin layer over the pure code and the Dagster definitions."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from valuemail.config import ConfigError, load_config


class _Ctx:
    def __init__(self, home: str | None, config_file: str | None):
        self.home = home
        self.config_file = config_file

    @property
    def config(self):
        try:
            return load_config(self.config_file, self.home)
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from None


def _echo_progress(message: str) -> None:
    click.echo(message, err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--home",
    envvar="VALUEMAIL_HOME",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder holding the DuckDB warehouse valuemail.duckdb, the outbox and every generated file "
    "[env VALUEMAIL_HOME; default ./data].",
)
@click.option(
    "--config",
    "config_file",
    envvar="VALUEMAIL_CONFIG",
    type=click.Path(dir_okay=False),
    default=None,
    help="TOML file merged over the embedded defaults (config/valuemail.toml) [env VALUEMAIL_CONFIG].",
)
@click.pass_context
def main(ctx: click.Context, home: str | None, config_file: str | None) -> None:
    """valuemail: value emails from product usage events."""
    ctx.obj = _Ctx(home, config_file)


@main.command("sample-data")
@click.option("--customers", type=click.IntRange(min=1), default=2000, show_default=True)
@click.option("--events", "events_per_customer", type=click.FloatRange(min=0), default=None,
              help="Average events per customer (default: a realistic mix, about 50).")
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--end-date", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="Last day of generated activity (default: today, UTC).")
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv", "ndjson"]), default="parquet", show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Output folder (default: the landing folder under --home).")
@click.pass_obj
def sample_data_cmd(obj: _Ctx, customers, events_per_customer, seed, end_date, fmt, out_dir) -> None:
    """Write deterministic synthetic customers and events for a workflow-automation SaaS."""
    from valuemail.sample_data import generate

    config = obj.config
    out = Path(out_dir) if out_dir else config.landing_dir
    summary = generate(
        out,
        customers=customers,
        seed=seed,
        end_date=end_date.date() if end_date else None,
        fmt=fmt,
        events_per_customer=events_per_customer,
        progress=_echo_progress,
    )
    click.echo(summary.describe())


@main.command("ingest")
@click.argument("paths", nargs=-1, required=True)
@click.pass_obj
def ingest_cmd(obj: _Ctx, paths: tuple[str, ...]) -> None:
    """Load event and customer files (CSV, NDJSON, Parquet; files, folders or s3://bucket/prefix)."""
    from valuemail.ingest import IngestError, ingest_paths
    from valuemail.warehouse import open_warehouse

    config = obj.config
    with open_warehouse(config.warehouse_path) as con:
        try:
            report = ingest_paths(con, list(paths), config, progress=_echo_progress)
        except IngestError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(report.describe())


def _exit_now(message: str) -> None:
    """Exit 130 without waiting for the run's worker thread (it may be blocked in a step)."""
    click.echo(message, err=True)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(130)


@main.command("run")
@click.option("--campaign", type=click.Choice(["weekly", "monthly", "yearly"]), default="weekly", show_default=True)
@click.option("--period", default=None, help="First day of the period (default: the last complete period, UTC).")
@click.option("--as-of", "as_of", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="Data cut-off (exclusive day, UTC; default: today): a period not ended by then is measured up to it.")
@click.option("--sample-customers", type=click.IntRange(min=1), default=2000, show_default=True,
              help="How many sample customers to generate when the home is empty.")
@click.option("--allow-late", is_flag=True,
              help="Send even if the period's send window has closed (delivery.send_window_*_days).")
@click.pass_obj
def run_cmd(obj: _Ctx, campaign: str, period: str | None, as_of, sample_customers: int, allow_late: bool) -> None:
    """Run the pipeline for one period through Dagster and print what happened.

    On an empty home it first writes sample data into the landing folder, and says so.
    A period whose send window has closed is computed but nobody is sent it (stale_period),
    unless --allow-late.
    """
    from pipelines.runner import RunInterrupted, run_campaign

    config = obj.config
    try:
        report = run_campaign(config, campaign, period, sample_customers=sample_customers, echo=click.echo,
                              as_of=as_of.date() if as_of else None, allow_late=allow_late)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    except RunInterrupted as exc:
        _exit_now(str(exc))
    click.echo(report)


@main.command("backfill")
@click.option("--campaign", type=click.Choice(["weekly", "monthly", "yearly"]), required=True)
@click.option("--from", "first", required=True, help="First period (its first day).")
@click.option("--to", "last", required=True, help="Last period (its first day), inclusive.")
@click.option("--allow-late", is_flag=True,
              help="Send periods whose send window has closed too (default: computed, not sent).")
@click.pass_obj
def backfill_cmd(obj: _Ctx, campaign: str, first: str, last: str, allow_late: bool) -> None:
    """Run a range of periods, oldest first. Already-sent messages are never sent again.

    Periods whose send window has closed are computed but not sent, unless --allow-late.
    """
    from pipelines.runner import RunInterrupted, backfill_campaign

    try:
        periods, stale = backfill_campaign(obj.config, campaign, first, last, echo=click.echo, allow_late=allow_late)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    except RunInterrupted as exc:
        _exit_now(str(exc))
    click.echo(f"backfilled {len(periods)} {campaign} periods: {periods[0].key} … {periods[-1].key}")
    if stale:
        click.echo(f"{len(stale)} of them stale (send window closed; computed, nothing sent: "
                   f"{', '.join(p.key for p in stale)}); --allow-late sends them")


@main.command("ui")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=3000, show_default=True)
@click.pass_obj
def ui_cmd(obj: _Ctx, host: str, port: int) -> None:
    """Open the Dagster UI (dg dev: webserver + schedules/sensors daemon) on this home's instance."""
    from pipelines.instance import prepare_dagster_home

    config = obj.config
    workspace = Path(__file__).resolve().parent.parent / "workspace.yaml"
    env = {**os.environ, "VALUEMAIL_HOME": str(config.home), "DAGSTER_HOME": str(prepare_dagster_home(config))}
    if obj.config_file:
        env["VALUEMAIL_CONFIG"] = str(Path(obj.config_file).resolve())
    dg = str(Path(sys.executable).parent / "dg")
    click.echo(f"Dagster UI on http://{host}:{port}  (instance {env['DAGSTER_HOME']}; Ctrl-C stops it)", err=True)
    sys.exit(_supervise([dg, "dev", "-w", str(workspace), "-h", host, "-p", str(port)], env))


UI_STOP_GRACE_S = 10


def _supervise(argv: list[str], env: dict[str, str]) -> int:
    """Run ``argv`` in its own process group; SIGTERM / Ctrl-C stop the whole group.

    ``dg dev`` (webserver, daemon, code servers) ignores SIGTERM and can take minutes to act on
    SIGINT while it starts: the group gets SIGINT, and SIGKILL after ``UI_STOP_GRACE_S``.
    """
    import signal
    import subprocess

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    proc = subprocess.Popen(argv, env=env, start_new_session=True)
    signal.signal(signal.SIGTERM, interrupt)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=UI_STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            click.echo(f"the UI did not stop within {UI_STOP_GRACE_S}s: killed", err=True)
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # whatever of the group is left (code servers)
        except ProcessLookupError:
            pass
        proc.wait()
        return 130


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8080, show_default=True)
@click.pass_obj
def serve_cmd(obj: _Ctx, host: str, port: int) -> None:
    """Run the preference centre (preferences page and one-click unsubscribe)."""
    from preference_centre.server import serve

    serve(obj.config, host=host, port=port)


# Commands that live in their own modules (each imports its heavy dependencies lazily).
from pipelines.commands.engagement import engagement  # noqa: E402
from pipelines.commands.explain import explain  # noqa: E402
from pipelines.commands.preview import preview  # noqa: E402

for _command in (explain, engagement, preview):
    main.add_command(_command)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
