# The faultline node image: the imported Debian base plus the raftkv server binary.
# BASE is passed by the harness (faultline-base:<hash>); no registry is ever contacted
# because the base image already exists locally.
ARG BASE
FROM ${BASE}
COPY raftkv /usr/local/bin/raftkv
WORKDIR /data
