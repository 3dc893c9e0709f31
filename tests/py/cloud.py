"""Creates a bucket on an S3-compatible server or a container on Azurite, for the
end-to-end tests of dhub's cloud back ends (object_store does not create them).

    python cloud.py s3 BUCKET        # uses AWS_ENDPOINT, AWS_ACCESS_KEY_ID, ...
    python cloud.py azure CONTAINER  # uses AZURITE_BLOB_STORAGE_URL, AZURE_STORAGE_ACCOUNT_*
"""

import os
import sys


def main(kind, name):
    if kind == "s3":
        import boto3

        s3 = boto3.client(
            "s3",
            endpoint_url=os.environ["AWS_ENDPOINT"],
            aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
            region_name=os.environ.get("AWS_REGION", "us-east-1"),
        )
        s3.create_bucket(Bucket=name)
    elif kind == "azure":
        from azure.storage.blob import BlobServiceClient

        account = os.environ["AZURE_STORAGE_ACCOUNT_NAME"]
        key = os.environ["AZURE_STORAGE_ACCOUNT_KEY"]
        url = os.environ["AZURITE_BLOB_STORAGE_URL"].rstrip("/")
        conn = (
            f"DefaultEndpointsProtocol=http;AccountName={account};AccountKey={key};"
            f"BlobEndpoint={url}/{account};"
        )
        BlobServiceClient.from_connection_string(conn).create_container(name)
    else:
        sys.exit(f"unknown kind {kind}")


if __name__ == "__main__":
    main(*sys.argv[1:])
