"""The CDN edge: an nginx caching proxy in front of object storage (config renderer + process runner).

Public API:
    nginx_config: EdgeParams, Upstream, StorageBackend, origin_storage, s3_storage, parse_upstream,
                  render_config (pure)
    nginx_process: EdgeOptions, EdgeProcess, run_edge, start_edge, check_config, find_nginx
    logs: LogEntry, StubStatus, parse_log, parse_stub_status (pure)
"""
