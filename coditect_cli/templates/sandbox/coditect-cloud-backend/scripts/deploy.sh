#!/bin/sh
# Deploy the backend image to Cloud Run: scripts/deploy.sh <environment>
set -eu
env="${1:-dev}"
echo "deploying coditect-api to ${env}"
gcloud run deploy "coditect-${env}-api" --image "us-docker.pkg.dev/coditect/backend/api:${env}"
