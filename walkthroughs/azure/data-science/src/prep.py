"""Prep step: split the raw table into train.csv and test.csv (standard library only, so it starts fast)."""

import argparse
import csv
import random
from pathlib import Path


def split_rows(rows: list, test_fraction: float, seed: int) -> tuple[list, list]:
    """Shuffle the rows with a seeded generator and cut off the last test_fraction as the test set."""
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    n_test = round(len(rows) * test_fraction)
    test = [rows[i] for i in order[:n_test]]
    train = [rows[i] for i in order[n_test:]]
    return train, test


def write_table(folder: str, name: str, header: list, rows: list) -> None:
    Path(folder).mkdir(parents=True, exist_ok=True)
    with open(Path(folder) / name, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--raw_data", required=True, help="CSV file with a 'target' column")
    parser.add_argument("--test_fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--train_data", required=True, help="output folder for train.csv")
    parser.add_argument("--test_data", required=True, help="output folder for test.csv")
    args = parser.parse_args()

    with open(args.raw_data, newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = list(reader)
    train, test = split_rows(rows, args.test_fraction, args.seed)
    write_table(args.train_data, "train.csv", header, train)
    write_table(args.test_data, "test.csv", header, test)
    print(f"prep: {len(train)} training rows, {len(test)} test rows")


if __name__ == "__main__":
    main()
