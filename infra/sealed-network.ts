import { type CfnResource, Fn, Lazy, Stack, Validations } from "aws-cdk-lib";
import {
  type CfnSecurityGroup,
  type CfnVPCEndpoint,
  FlowLogDestination,
  FlowLogTrafficType,
  type GatewayVpcEndpoint,
  GatewayVpcEndpointAwsService,
  IpAddresses,
  SecurityGroup,
  SubnetType,
  Vpc,
} from "aws-cdk-lib/aws-ec2";
import { AnyPrincipal, Effect, type IGrantable, PolicyDocument, PolicyStatement, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import type { IKey } from "aws-cdk-lib/aws-kms";
import type { LogGroup, RetentionDays } from "aws-cdk-lib/aws-logs";
import { AwsCustomResource, AwsCustomResourcePolicy, PhysicalResourceId } from "aws-cdk-lib/custom-resources";
import { Construct, type IConstruct } from "constructs";
import { encryptedLogGroup } from "./encrypted-log-group.js";
import { ManagedPolicyRole } from "./managed-policy-role.js";

export interface SealedNetworkProps {
  /** Customer-managed key of the flow-log and custom-resource log groups. */
  readonly encryptionKey: IKey;
  /** Availability zones, one private isolated subnet (/24) in each; SageMaker wants at least 2. Default: 2. */
  readonly maxAzs?: number;
  /** Retention of the flow logs and of the custom resources' logs. Default: one year. */
  readonly logRetention?: RetentionDays;
}

/** The VpcConfig that SageMaker models, training jobs and processing jobs take (same shape in each API). */
export interface SageMakerVpcConfig {
  readonly securityGroupIds: string[];
  readonly subnets: string[];
}

/**
 * The network the containers that parse untrusted uploads run in (the scoring model; the training job,
 * once retraining exists): a VPC with **private isolated subnets only** — no internet gateway, no NAT gateway, no
 * route out of the VPC — and an **S3 gateway endpoint** on their route tables, the one way out.
 *
 * - Security group (`securityGroup`): no ingress; egress only TCP 443 to the region's S3 prefix list
 *   (looked up at deploy: CloudFormation has no attribute for it), so even a route added later by hand
 *   leads nowhere else.
 * - S3 endpoint policy: refuses everything until a consumer names the objects its role may use
 *   (`allowS3`), then exactly those — a container cannot copy a study to a bucket of someone else's.
 * - Flow logs (all traffic) to a KMS-encrypted log group; the VPC's default security group is emptied
 *   (CDK's `restrictDefaultSecurityGroup` custom resource).
 * - No interface endpoints: what leaves the container is S3 only. SageMaker itself pulls the image from
 *   ECR (`ImageConfig.RepositoryAccessMode` Platform), ships logs and metrics, reads async requests,
 *   writes async results and publishes the SNS notifications outside this network; S3 objects under
 *   SSE-KMS are decrypted and encrypted by S3, so the container calls no KMS endpoint.
 *
 * The network is created whether or not a model is deployed: it costs nothing idle (no NAT, no interface
 * endpoints; flow logs bill by traffic) and the training job that makes the first model runs in it.
 * README "Deploy per institution" has the decision in short.
 */
export class SealedNetwork extends Construct {
  readonly vpc: Vpc;
  /** The workloads' security group: no ingress, HTTPS egress to the S3 prefix list only. */
  readonly securityGroup: SecurityGroup;
  /** The S3 gateway endpoint on every isolated subnet's route table; its policy grows with `allowS3`. */
  readonly s3Endpoint: GatewayVpcEndpoint;
  /** Id of the region's S3 prefix list (`com.amazonaws.<region>.s3`), resolved at deploy. */
  readonly s3PrefixListId: string;
  /** Flow logs of the whole VPC (accepted and rejected traffic). */
  readonly flowLogGroup: LogGroup;
  /** Subnets and security group for a SageMaker `VpcConfig`. */
  readonly sageMakerVpcConfig: SageMakerVpcConfig;
  private readonly s3Policy = new PolicyDocument();

  constructor(scope: Construct, id: string, props: SealedNetworkProps) {
    super(scope, id);
    const maxAzs = props.maxAzs ?? 2;
    if (!Number.isInteger(maxAzs) || maxAzs < 2 || maxAzs > 6) {
      throw new Error(`SealedNetwork: maxAzs must be an integer 2–6 (SageMaker wants subnets in at least two zones), got ${maxAzs}`);
    }
    const stack = Stack.of(this);

    this.flowLogGroup = encryptedLogGroup(this, "FlowLogs", { encryptionKey: props.encryptionKey, retention: props.logRetention });
    const flowLogRole = new ManagedPolicyRole(this, "FlowLogRole", {
      // Only flow logs of this account may use the role (confused-deputy guard, VPC user guide).
      assumedBy: new ServicePrincipal("vpc-flow-logs.amazonaws.com", {
        conditions: {
          StringEquals: { "aws:SourceAccount": stack.account },
          ArnLike: { "aws:SourceArn": stack.formatArn({ service: "ec2", resource: "vpc-flow-log", resourceName: "*" }) },
        },
      }),
      description: `VPC flow-log delivery of ${this.node.path}`,
    });
    this.vpc = new Vpc(this, "Vpc", {
      ipAddresses: IpAddresses.cidr("10.0.0.0/16"),
      maxAzs,
      natGateways: 0,
      createInternetGateway: false,
      subnetConfiguration: [{ name: "Sealed", subnetType: SubnetType.PRIVATE_ISOLATED, cidrMask: 24 }],
      restrictDefaultSecurityGroup: true,
      flowLogs: {
        All: {
          destination: FlowLogDestination.toCloudWatchLogs(this.flowLogGroup, flowLogRole),
          trafficType: FlowLogTrafficType.ALL,
        },
      },
    });
    restrictDefaultSgLogs(this, props);

    this.s3Endpoint = this.vpc.addGatewayEndpoint("S3", {
      service: GatewayVpcEndpointAwsService.S3,
      subnets: [{ subnetType: SubnetType.PRIVATE_ISOLATED }],
    });
    (this.s3Endpoint.node.defaultChild as CfnVPCEndpoint).policyDocument = Lazy.any({
      produce: () => (this.s3Policy.isEmpty ? denyAllS3() : this.s3Policy),
    });

    const prefixList = new AwsCustomResource(this, "S3PrefixList", {
      onUpdate: {
        service: "EC2",
        action: "describePrefixLists",
        parameters: { Filters: [{ Name: "prefix-list-name", Values: [`com.amazonaws.${stack.region}.s3`] }] },
        physicalResourceId: PhysicalResourceId.of(`com.amazonaws.${stack.region}.s3`),
        outputPaths: ["PrefixLists.0.PrefixListId"],
      },
      policy: AwsCustomResourcePolicy.fromSdkCalls({ resources: AwsCustomResourcePolicy.ANY_RESOURCE }),
      installLatestAwsSdk: false,
      logGroup: encryptedLogGroup(this, "S3PrefixListLogs", { encryptionKey: props.encryptionKey, retention: props.logRetention }),
    });
    this.s3PrefixListId = prefixList.getResponseField("PrefixLists.0.PrefixListId");
    acknowledgeAwsCustomResource(prefixList);

    this.securityGroup = new SecurityGroup(this, "SecurityGroup", {
      vpc: this.vpc,
      description: "Sealed workloads: no ingress; HTTPS to S3 through the gateway endpoint only",
      allowAllOutbound: false,
    });
    // Inline, not `addEgressRule`: CDK renders a prefix-list peer as a separate SecurityGroupEgress resource
    // and drops its placeholder rule, which would leave EC2's default allow-all egress in place.
    (this.securityGroup.node.defaultChild as CfnSecurityGroup).addPropertyOverride("SecurityGroupEgress", [
      {
        IpProtocol: "tcp",
        FromPort: 443,
        ToPort: 443,
        DestinationPrefixListId: this.s3PrefixListId,
        Description: "HTTPS to S3 (gateway endpoint prefix list)",
      },
    ]);

    this.sageMakerVpcConfig = {
      securityGroupIds: [this.securityGroup.securityGroupId],
      subnets: this.vpc.isolatedSubnets.map((s) => s.subnetId),
    };
  }

  /**
   * Lets traffic through the S3 endpoint perform `actions` on `resources` (object or bucket ARNs). The
   * endpoint refuses everything else; call it with the same scope as the workload role's own S3 grants.
   */
  allowS3(actions: string[], resources: string[]): void {
    this.s3Policy.addStatements(new PolicyStatement({ principals: [new AnyPrincipal()], actions, resources }));
  }

  /**
   * What SageMaker needs, under the execution role of a model or job placed in this network, to create
   * and remove the network interfaces that attach it (SageMaker developer guide, "CreateModel API:
   * Execution Role Permissions"): interfaces only in these subnets with this security group; Describe*
   * and DeleteNetworkInterfacePermission support no resource-level scope.
   */
  grantSageMakerNetworkInterfaces(grantee: IGrantable): void {
    const stack = Stack.of(this);
    const ec2Arn = (resource: string, resourceName: string) => stack.formatArn({ service: "ec2", resource, resourceName });
    const subnetArns = this.vpc.isolatedSubnets.map((s) => ec2Arn("subnet", s.subnetId));
    const interfaces = ec2Arn("network-interface", "*");
    const principal = grantee.grantPrincipal;
    principal.addToPrincipalPolicy(
      new PolicyStatement({
        sid: "CreateInterfacesInSealedSubnets",
        actions: ["ec2:CreateNetworkInterface"],
        resources: [...subnetArns, ec2Arn("security-group", this.securityGroup.securityGroupId), interfaces],
      }),
    );
    principal.addToPrincipalPolicy(
      new PolicyStatement({
        sid: "ManageInterfacesInSealedSubnets",
        actions: ["ec2:CreateNetworkInterfacePermission", "ec2:DeleteNetworkInterface"],
        resources: [interfaces],
        conditions: { ArnEquals: { "ec2:Subnet": subnetArns } },
      }),
    );
    principal.addToPrincipalPolicy(
      new PolicyStatement({
        sid: "NetworkCallsWithoutResourceScope",
        actions: [
          "ec2:DescribeDhcpOptions",
          "ec2:DescribeNetworkInterfaces",
          "ec2:DescribeSecurityGroups",
          "ec2:DescribeSubnets",
          "ec2:DescribeVpcs",
          "ec2:DeleteNetworkInterfacePermission",
        ],
        resources: ["*"],
      }),
    );
  }
}

/** The S3 endpoint's policy while no workload has named its objects: nothing passes. */
const denyAllS3 = (): PolicyDocument =>
  new PolicyDocument({
    statements: [
      new PolicyStatement({
        sid: "NothingUntilAWorkloadIsGranted",
        effect: Effect.DENY,
        principals: [new AnyPrincipal()],
        actions: ["s3:*"],
        resources: ["*"],
      }),
    ],
  });

/** Construct id of the stack-wide singleton Lambda that aws-cdk-lib creates for every AwsCustomResource. */
const AWS_CUSTOM_RESOURCE_HANDLER_ID = "AWS679f53fac002430cb0da5b7982bd2287";
/** Construct id of the stack-wide provider behind `restrictDefaultSecurityGroup` (Custom::VpcRestrictDefaultSG). */
const RESTRICT_DEFAULT_SG_PROVIDER_ID = "Custom::VpcRestrictDefaultSGCustomResourceProvider";

/** A CDK singleton the stack must hold; throws with the fix when aws-cdk-lib renames it. */
const cdkSingleton = (scope: IConstruct, id: string): IConstruct => {
  const found = Stack.of(scope).node.tryFindChild(id);
  if (!found) throw new Error(`aws-cdk-lib's singleton ${id} not found: aws-cdk-lib renamed it; update sealed-network.ts`);
  return found;
};

/**
 * The provider that empties the default security group runs once per deploy; its log group is made here,
 * encrypted and with a retention, before it first runs (Lambda would otherwise make one, unencrypted and
 * kept forever). cdk-nag raises nothing on it (a CfnResource, not a CfnFunction).
 */
const restrictDefaultSgLogs = (network: SealedNetwork, props: SealedNetworkProps): void => {
  const provider = cdkSingleton(network, RESTRICT_DEFAULT_SG_PROVIDER_ID);
  const handler = provider.node.findChild("Handler") as CfnResource;
  const logs = encryptedLogGroup(network, "RestrictDefaultSgLogs", {
    encryptionKey: props.encryptionKey,
    retention: props.logRetention,
    logGroupName: Fn.join("", ["/aws/lambda/", handler.ref]),
  });
  network.vpc.node.findChild("RestrictDefaultSecurityGroupCustomResource").node.addDependency(logs);
};

/** The findings of CDK's AwsCustomResource machinery that looks up the S3 prefix list, with their reasons. */
const acknowledgeAwsCustomResource = (lookup: AwsCustomResource): void => {
  const cdkInternal =
    "CDK's AwsCustomResource singleton Lambda, run by CloudFormation at deploy to look up the S3 prefix list id (and each annotator's Cognito sub, infra/completion-api.ts)";
  Validations.of(cdkSingleton(lookup, AWS_CUSTOM_RESOURCE_HANDLER_ID)).acknowledge(
    {
      id: "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
      reason: `${cdkInternal}: its role carries only AWSLambdaBasicExecutionRole (CloudWatch Logs write), which CDK attaches`,
    },
    ...["HIPAA.Security", "NIST.800.53.R5"].flatMap((pack) => [
      {
        id: `${pack}-LambdaInsideVPC`,
        reason: `${cdkInternal}: it calls only the EC2 and Cognito user-pool APIs, which the sealed network deliberately cannot reach (no interface endpoints for the workloads to use)`,
      },
      {
        id: `${pack}-LambdaDLQ`,
        reason: `${cdkInternal}: CloudFormation invokes it and waits for its answer; a failure fails and rolls back the deploy, no event is lost`,
      },
      {
        id: `${pack}-LambdaConcurrency`,
        reason: `${cdkInternal}: it runs once per custom resource per deploy, nothing else can invoke it`,
      },
    ]),
  );
  const policyReason = "the AwsCustomResource's inline policy, which CDK attaches to its singleton's role: ec2:DescribePrefixLists only";
  Validations.of(lookup.node.findChild("CustomResourcePolicy")).acknowledge(
    { id: "AwsSolutions-IAM5[Resource::*]", reason: `${policyReason}, an action with no resource-level permissions` },
    { id: "HIPAA.Security-IAMNoInlinePolicy", reason: `${policyReason}; CDK offers no managed-policy form` },
    { id: "NIST.800.53.R5-IAMNoInlinePolicy", reason: `${policyReason}; CDK offers no managed-policy form` },
  );
};
