# The faultline node image: the imported Debian base plus the bundled server binary (raftkv),
# which the harness puts in the build context as bin/<name>.
# BASE is passed by the harness (faultline-base:<hash>); no registry is ever contacted
# because the base image already exists locally.
ARG BASE
FROM ${BASE}
COPY bin/ /usr/local/bin/
WORKDIR /data
