"""boto3 adapters: clients, resource names, provisioning and the DynamoDB stores."""
