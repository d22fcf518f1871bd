"""How the benchmark scripts print their figures: one aligned ``name  value`` line each."""

from __future__ import annotations


def print_figures(figures: list[tuple[str, str]]) -> None:
    width = max(len(name) for name, _ in figures)
    print()
    for name, value in figures:
        print(f"{name:<{width}}  {value}")
