"""`python -m bench` runs every benchmark in turn."""

from bench import engine_bench, terminology_bench

if __name__ == "__main__":
    engine_bench.main()
    terminology_bench.main([])
