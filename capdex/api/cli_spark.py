"""`capdex spark-index` and `capdex import`: index on a Spark cluster, merge the result here.

Registered on the main app by api/cli.py (`register(app)`).
"""

from pathlib import Path
from typing import Annotated

import typer

from capdex.api import cli_common as common


def register(app: typer.Typer) -> None:
    """Add the two commands to the `capdex` app."""

    @app.command("spark-index")
    def spark_index(
        paths: Annotated[list[Path], typer.Argument(help="Folders (or single photos) to caption; "
                         "on a cluster, paths every executor can read (a shared mount).")],
        output: Annotated[str, typer.Option("--output", "-o", metavar="DEST",
                          help="Parquet result to write (a folder, as Spark writes it; "
                          "replaced if it exists); on a cluster on shared storage, or an "
                          "hdfs:// or s3a:// URL.")],
        master: Annotated[str | None, typer.Option("--master", metavar="URL",
                          help="Spark master URL, e.g. local[4] or spark://host:7077 "
                          "(default: CAPDEX_SPARK_MASTER, else local[*]).")] = None,
        conf: Annotated[list[str] | None, typer.Option("--conf", metavar="KEY=VALUE",
                        help="Extra Spark setting KEY=VALUE (repeatable), e.g. "
                        "spark.executor.memory=2g.")] = None,
        captioner: common.CaptionerOpt = None,
        model_path: common.ModelPathOpt = None,
        endpoint: common.EndpointOpt = None,
        model: common.ModelOpt = None,
        data_dir: common.DataDir = None,
        as_json: common.JsonOpt = False,
    ) -> None:
        """Caption and embed photos on Apache Spark into Parquet; merge it with `capdex import`.

        Each executor loads the captioner once; unreadable photos are rows with an error.
        """
        from capdex.indexer.spark_job import SparkJobError, run_spark_index

        settings = common._settings(data_dir=data_dir, captioner=captioner, model_path=model_path,
                                 captioner_endpoint=endpoint, captioner_model=model)
        common._check_captioner(settings)
        try:
            summary = run_spark_index(paths, output, settings, master=master, conf=conf or ())
        except SparkJobError as exc:
            common._fail(str(exc))
        if as_json:
            common._print_json(summary.__dict__)
        else:
            typer.echo(summary.line())
            if summary.failed:
                typer.echo(f"{summary.failed} file(s) could not be captioned; `capdex import` "
                           "records them (see `capdex errors`).")

    @app.command("import")
    def import_(
        source: Annotated[Path, typer.Argument(help="A `capdex spark-index` Parquet result.")],
        data_dir: common.DataDir = None,
        as_json: common.JsonOpt = False,
    ) -> None:
        """Merge a spark-index result into this index (safe to repeat).

        It goes into the store and the vector index. Known photos only gain files, human captions stay, and captions from another embedder
        are embedded here with this store's.
        """
        from capdex.indexer.importer import ParquetImportError, import_parquet
        from capdex.indexer.pipeline import IndexerError

        settings = common._settings(data_dir=data_dir)
        db = common._database(settings)
        try:
            summary = import_parquet(settings, db, source)
        except (ParquetImportError, IndexerError) as exc:
            common._fail(str(exc))
        if as_json:
            common._print_json(summary.as_dict())
        else:
            typer.echo(summary.line())
            if summary.failed:
                typer.echo(f"{summary.failed} file(s) could not be indexed; see `capdex errors`.")
