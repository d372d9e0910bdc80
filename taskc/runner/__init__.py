"""The eval runner: requests in, results out; retries, caching and concurrency live here once."""
