"""Writes the digits test split as Spark itself writes data (tests/data/spark/), for the reader's tests.

    /work/venv-spark/bin/python examples/gen/spark_datasets.py   # pyspark 3.5.3, Java 17

Each dataset holds the 360 rows of examples/data/digits_test.parquet with an `id` column (the row
number in that file), so that a test can compare what distk-gpu reads with the original rows:
  vectors/      VectorAssembler's `features` (Spark ML vectors: sparse as the assembler makes
                them, even ids stored dense) and StringIndexer's `label` (double), 3 part files
  partitioned/  `features` as array<float> and `label` as a hive partition folder (label=3/)
  csv/          f0..f63 and `label` as CSV part files with a header row
  onehot/       `features` vector and OneHotEncoder's `label` vector (dropLast=False)
"""

import os
import shutil
import sys

from pyspark.ml.feature import OneHotEncoder, StringIndexer, VectorAssembler
from pyspark.ml.functions import vector_to_array
from pyspark.ml.linalg import DenseVector, VectorUDT
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SOURCE = os.path.join(ROOT, "examples", "data", "digits_test.parquet")
OUT = os.path.join(ROOT, "tests", "data", "spark")
WIDTH = 64


def main():
    # The workers run the same Python (the UDF and vector_to_array need numpy there).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = (
        SparkSession.builder.master("local[2]")
        .appName("distk-gpu fixtures")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    df = spark.read.parquet(SOURCE)
    df = df.withColumn("id", F.monotonically_increasing_id())
    pixels = [F.col("features")[i].cast("double").alias(f"p{i}") for i in range(WIDTH)]
    flat = df.select("id", F.col("label").cast("string").alias("digit"), *pixels)
    assembled = VectorAssembler(inputCols=[f"p{i}" for i in range(WIDTH)], outputCol="features").transform(flat)
    # Names "0".."9" in alphabetical order index as the digits themselves.
    indexed = StringIndexer(inputCol="digit", outputCol="label", stringOrderType="alphabetAsc").fit(assembled).transform(assembled)
    # The assembler makes every digits row sparse (most pixels are 0): store even ids dense, so
    # that both kinds of vector are in the parts.
    densify = F.udf(lambda i, v: DenseVector(v.toArray()) if i % 2 == 0 else v, VectorUDT())
    vectors = indexed.select("id", densify("id", "features").alias("features"), "label")
    shutil.rmtree(OUT, ignore_errors=True)
    vectors.repartition(3).write.parquet(os.path.join(OUT, "vectors"))

    arrays = vectors.select("id", vector_to_array("features", "float32").alias("features"), F.col("label").cast("int"))
    arrays.repartition(1).write.partitionBy("label").parquet(os.path.join(OUT, "partitioned"))

    csv = vectors.select("id", *[vector_to_array("features")[i].alias(f"f{i}") for i in range(WIDTH)], "label")
    csv.repartition(2).write.option("header", "true").csv(os.path.join(OUT, "csv"))

    onehot = OneHotEncoder(inputCols=["label"], outputCols=["onehot"], dropLast=False).fit(vectors).transform(vectors)
    onehot.select("id", "features", F.col("onehot").alias("label")).repartition(2).write.parquet(os.path.join(OUT, "onehot"))

    kinds = vectors.select(F.udf(lambda v: type(v).__name__)("features").alias("kind")).groupBy("kind").count().collect()
    print("vector kinds:", {r["kind"]: r["count"] for r in kinds}, file=sys.stderr)
    spark.stop()


if __name__ == "__main__":
    main()
