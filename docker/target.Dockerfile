# The image of a target described by a file: the imported Debian base with the target's
# packages (BASE, faultline-base:<hash>), and the target's folder at /opt/faultline/target.
ARG BASE
FROM ${BASE}
COPY target/ /opt/faultline/target/
WORKDIR /data
