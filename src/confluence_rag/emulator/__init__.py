"""A faithful local Confluence (Cloud and Data Center) for tests, benchmarks and the demo."""
