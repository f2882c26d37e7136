# Workload image for the Docker tests: an empty image with a static busybox, so containers run
# real processes (`sleep`, `sh`) that `docker top` lists, without any registry.
FROM scratch
COPY busybox /bin/busybox
ENTRYPOINT ["/bin/busybox"]
