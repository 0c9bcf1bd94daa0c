import { ConditionalCheckFailedException } from "@aws-sdk/client-dynamodb";

/**
 * Runs one conditional DynamoDB write (PutItem, UpdateItem, DeleteItem): true when it was written, false when its
 * condition did not hold. Any other error is thrown (the caller's queue or workflow retries it).
 */
export async function conditionally(write: () => Promise<unknown>): Promise<boolean> {
  try {
    await write();
    return true;
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return false;
    throw error;
  }
}
