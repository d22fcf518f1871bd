"""Sample workloads the suites launch, and the recipes of the images they run in."""
