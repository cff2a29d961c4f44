"""`capdex spark-index` and `capdex import`: caption on a Spark cluster, merge the result here.

Registered on the main app by api/cli.py (`register(app)`).
"""

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add the two commands to the `capdex` app."""
    from capdex.api import cli

    @app.command("spark-index")
    def spark_index(
        paths: Annotated[list[Path], typer.Argument(help="Folders (or single photos) to caption; "
                         "on a cluster, paths every executor can read (a shared mount).")],
        output: Annotated[str, typer.Option("--output", "-o", help="Parquet result to write "
                          "(a folder, as Spark writes it; replaced if it exists); on a cluster "
                          "on shared storage, or an hdfs:// or s3a:// URL.")],
        master: Annotated[str | None, typer.Option("--master", help="Spark master URL, e.g. "
                          "local[4] or spark://host:7077 (default: CAPDEX_SPARK_MASTER, else "
                          "local[*]).")] = None,
        conf: Annotated[list[str] | None, typer.Option("--conf", help="Extra Spark setting "
                        "KEY=VALUE (repeatable), e.g. spark.executor.memory=2g.")] = None,
        captioner: cli.CaptionerOpt = None,
        model_path: cli.ModelPathOpt = None,
        endpoint: cli.EndpointOpt = None,
        model: cli.ModelOpt = None,
        data_dir: cli.DataDir = None,
        as_json: cli.JsonOpt = False,
    ) -> None:
        """Caption and embed photos on Apache Spark into Parquet; merge it with `capdex import`.

        Each executor loads the captioner once; unreadable photos are rows with an error.
        """
        from capdex.indexer.spark_job import SparkJobError, run_spark_index

        settings = cli._settings(data_dir=data_dir, captioner=captioner, model_path=model_path,
                                 captioner_endpoint=endpoint, captioner_model=model)
        cli._check_captioner(settings)
        try:
            summary = run_spark_index(paths, output, settings, master=master, conf=conf or ())
        except SparkJobError as exc:
            cli._fail(str(exc))
        if as_json:
            cli._print_json(summary.__dict__)
        else:
            typer.echo(summary.line())
            if summary.failed:
                typer.echo(f"{summary.failed} file(s) could not be captioned; `capdex import` "
                           "records them (see `capdex errors`).")

    @app.command("import")
    def import_(
        source: Annotated[Path, typer.Argument(help="A `capdex spark-index` Parquet result.")],
        data_dir: cli.DataDir = None,
        as_json: cli.JsonOpt = False,
    ) -> None:
        """Merge a spark-index result into the store and the vector index (safe to repeat).

        Known photos only gain files, human captions stay, and captions from another embedder
        are embedded here with this store's.
        """
        from capdex.indexer.importer import ParquetImportError, import_parquet
        from capdex.indexer.pipeline import IndexerError

        settings = cli._settings(data_dir=data_dir)
        db = cli._database(settings)
        try:
            summary = import_parquet(settings, db, source)
        except (ParquetImportError, IndexerError) as exc:
            cli._fail(str(exc))
        if as_json:
            cli._print_json(summary.as_dict())
        else:
            typer.echo(summary.line())
            if summary.failed:
                typer.echo(f"{summary.failed} file(s) could not be indexed; see `capdex errors`.")
