import { App, Stack } from "aws-cdk-lib";
import { Match } from "aws-cdk-lib/assertions";
import { Key } from "aws-cdk-lib/aws-kms";
import { describe, expect, it } from "vitest";
import { SealedNetwork } from "../../infra/sealed-network.js";
import { buildStack, joinIntrinsics, logicalId, MODEL_ARTIFACT, ref, roleStatements } from "./stack-fixture.js";

const { stack, t } = buildStack({ scoring: { modelArtifact: MODEL_ARTIFACT } });
const network = stack.network;
const subnets = network.vpc.isolatedSubnets;
const securityGroupId = { "Fn::GetAtt": [logicalId(network.securityGroup), "GroupId"] };
const prefixListLookup = network.node.findChild("S3PrefixList").node.findChild("Resource");
const prefixListId = { "Fn::GetAtt": [logicalId(prefixListLookup), "PrefixLists.0.PrefixListId"] };
const resources = t.toJSON().Resources as Record<string, { Type: string; Properties?: Record<string, unknown> }>;
const ofType = (type: string) => Object.values(resources).filter((r) => r.Type === type);
const ec2Arn = (resource: string, id: string) => `arn:\${AWS::Partition}:ec2:\${AWS::Region}:\${AWS::AccountId}:${resource}/${id}`;
const subnetArns = subnets.map((s) => ec2Arn("subnet", `\${${logicalId(s)}}`));
const executionRole = stack.scoringEndpoint.node.findChild(
  "ExecutionRole",
) as import("../../infra/managed-policy-role.js").ManagedPolicyRole;

describe("sealed network: where the scoring container runs", () => {
  it("puts the SageMaker model in the isolated subnets with the sealed security group (not network isolation: the container reads S3 itself)", () => {
    t.hasResourceProperties("AWS::SageMaker::Model", {
      VpcConfig: { Subnets: subnets.map((s) => ref(s)), SecurityGroupIds: [securityGroupId] },
      EnableNetworkIsolation: false,
      // The platform pulls the image from ECR, outside the sealed network.
      PrimaryContainer: Match.objectLike({ ImageConfig: { RepositoryAccessMode: "Platform" } }),
    });
  });

  it("has private isolated subnets in two zones and no way out: no internet or NAT gateway, no public IPs, no routes", () => {
    expect(subnets).toHaveLength(2);
    expect(network.vpc.publicSubnets).toHaveLength(0);
    expect(network.vpc.privateSubnets).toHaveLength(0);
    for (const type of [
      "AWS::EC2::InternetGateway",
      "AWS::EC2::EgressOnlyInternetGateway",
      "AWS::EC2::VPCGatewayAttachment",
      "AWS::EC2::NatGateway",
      "AWS::EC2::EIP",
      "AWS::EC2::TransitGatewayAttachment",
      "AWS::EC2::VPCPeeringConnection",
      "AWS::EC2::Route",
    ]) {
      t.resourceCountIs(type, 0);
    }
    const subnetResources = ofType("AWS::EC2::Subnet");
    expect(subnetResources).toHaveLength(2);
    for (const subnet of subnetResources) expect(subnet.Properties?.MapPublicIpOnLaunch).toBe(false);
    // Only gateway endpoints, and only S3: no interface endpoint the container could reach another service through.
    const endpoints = ofType("AWS::EC2::VPCEndpoint");
    expect(endpoints).toHaveLength(1);
    expect(endpoints[0]?.Properties).toMatchObject({ VpcEndpointType: "Gateway" });
  });

  it("attaches the S3 gateway endpoint to every isolated subnet's route table", () => {
    t.hasResourceProperties("AWS::EC2::VPCEndpoint", {
      ServiceName: { "Fn::Join": ["", ["com.amazonaws.", { Ref: "AWS::Region" }, ".s3"]] },
      VpcEndpointType: "Gateway",
      VpcId: ref(network.vpc),
      RouteTableIds: subnets.map((s) => ({ Ref: logicalId(s.node.findChild("RouteTable")) })),
    });
    for (const s of subnets) {
      t.hasResourceProperties("AWS::EC2::SubnetRouteTableAssociation", {
        SubnetId: ref(s),
        RouteTableId: { Ref: logicalId(s.node.findChild("RouteTable")) },
      });
    }
  });

  it("lets through the S3 endpoint exactly what the execution role may do in S3, and nothing outside this deployment's buckets", () => {
    const policy = ofType("AWS::EC2::VPCEndpoint")[0]?.Properties?.PolicyDocument as { Statement: Record<string, unknown>[] };
    const render = (s: Record<string, unknown>) => ({
      Action: s.Action,
      Resource: [s.Resource]
        .flat()
        .map((r) => (typeof r === "object" && r && "Fn::GetAtt" in r ? joinIntrinsics({ "Fn::Join": ["", [r]] }) : joinIntrinsics(r))),
    });
    const endpoint = policy.Statement.map((s) => {
      expect(s).toMatchObject({ Effect: "Allow", Principal: { AWS: "*" } });
      return render(s);
    });
    // Drift guard: an S3 grant added to the role alone would be refused at the endpoint (add both with one call).
    // The training job runs in the same network: its role's S3 grants pass the endpoint too, and only those.
    const trainingRole = stack.learning?.workflow.trainingRole;
    if (!trainingRole) throw new Error("a deployed endpoint comes with the learning workflow");
    const roleS3 = [executionRole.policy, trainingRole.policy].flatMap((p) =>
      roleStatements(t, p).filter((s) => JSON.stringify(s.Action).includes("s3:")),
    );
    expect(endpoint).toEqual(roleS3.map(render));
    const studies = `\${${logicalId(stack.studies.bucket)}.Arn}/`;
    const artefact = `arn:\${AWS::Partition}:s3:::ich-models/v1/model.tar.gz`;
    for (const resource of endpoint.flatMap((s) => s.Resource)) {
      const bucketItself = resource === studies.slice(0, -1); // s3:ListBucket of the training channels
      expect(resource === artefact || bucketItself || (resource.startsWith(studies) && resource.endsWith("/*")), resource).toBe(true);
    }
    expect(endpoint.flatMap((s) => s.Resource)).toEqual(
      expect.arrayContaining([artefact, `${studies}uploads/*`, `${studies}scoring-requests/*`, `${studies}overlays/*`]),
    );
  });

  it("allows the sealed security group no ingress and only HTTPS to the S3 prefix list out (no 0.0.0.0/0 anywhere)", () => {
    t.hasResourceProperties("AWS::EC2::SecurityGroup", {
      VpcId: ref(network.vpc),
      SecurityGroupEgress: [
        {
          IpProtocol: "tcp",
          FromPort: 443,
          ToPort: 443,
          DestinationPrefixListId: prefixListId,
          Description: Match.anyValue(),
        },
      ],
      SecurityGroupIngress: Match.absent(),
    });
    // Rules as separate resources would leave EC2's default allow-all egress in place.
    t.resourceCountIs("AWS::EC2::SecurityGroupEgress", 0);
    t.resourceCountIs("AWS::EC2::SecurityGroupIngress", 0);
    const rules = ofType("AWS::EC2::SecurityGroup").flatMap((g) => [
      ...((g.Properties?.SecurityGroupEgress as unknown[]) ?? []),
      ...((g.Properties?.SecurityGroupIngress as unknown[]) ?? []),
    ]);
    expect(JSON.stringify(rules)).not.toMatch(/0\.0\.0\.0\/0|::\/0/);
    // The prefix list id is looked up at deploy (CloudFormation has no attribute for it).
    const lookup = JSON.parse(joinIntrinsics(resources[logicalId(prefixListLookup)]?.Properties?.Create));
    expect(lookup).toMatchObject({
      service: "EC2",
      action: "describePrefixLists",
      parameters: { Filters: [{ Name: "prefix-list-name", Values: [`com.amazonaws.\${AWS::Region}.s3`] }] },
      outputPaths: ["PrefixLists.0.PrefixListId"],
    });
  });

  it("empties the default security group and logs all traffic to a KMS-encrypted log group", () => {
    t.hasResourceProperties("Custom::VpcRestrictDefaultSG", {
      DefaultSecurityGroupId: { "Fn::GetAtt": [logicalId(network.vpc), "DefaultSecurityGroup"] },
    });
    t.hasResourceProperties("AWS::EC2::FlowLog", {
      ResourceId: ref(network.vpc),
      ResourceType: "VPC",
      TrafficType: "ALL",
      LogDestinationType: "cloud-watch-logs",
      LogGroupName: ref(network.flowLogGroup),
    });
    expect(resources[logicalId(network.flowLogGroup)]?.Properties).toMatchObject({
      KmsKeyId: { "Fn::GetAtt": [logicalId(stack.dataKey.key), "Arn"] },
      RetentionInDays: 365,
    });
  });

  it("gives the execution role the EC2 network-interface permissions SageMaker needs, scoped to the sealed subnets", () => {
    const ec2 = roleStatements(t, executionRole.policy).filter((s) => JSON.stringify(s.Action).includes("ec2:"));
    const rendered = ec2.map((s) => ({
      Action: s.Action,
      Resource: [s.Resource].flat().map(joinIntrinsics),
      Condition: s.Condition && {
        ArnEquals: {
          "ec2:Subnet": (s.Condition as { ArnEquals: { "ec2:Subnet": unknown[] } }).ArnEquals["ec2:Subnet"].map(joinIntrinsics),
        },
      },
    }));
    expect(rendered).toEqual([
      {
        Action: "ec2:CreateNetworkInterface",
        Resource: [
          ...subnetArns,
          ec2Arn("security-group", `\${${logicalId(network.securityGroup)}.GroupId}`),
          ec2Arn("network-interface", "*"),
        ],
        Condition: undefined,
      },
      {
        Action: ["ec2:CreateNetworkInterfacePermission", "ec2:DeleteNetworkInterface"],
        Resource: [ec2Arn("network-interface", "*")],
        Condition: { ArnEquals: { "ec2:Subnet": subnetArns } },
      },
      {
        // No resource-level permissions for these (DeleteNetworkInterfacePermission names only a permission id).
        Action: [
          "ec2:DescribeDhcpOptions",
          "ec2:DescribeNetworkInterfaces",
          "ec2:DescribeSecurityGroups",
          "ec2:DescribeSubnets",
          "ec2:DescribeVpcs",
          "ec2:DeleteNetworkInterfacePermission",
        ],
        Resource: ["*"],
        Condition: undefined,
      },
    ]);
  });

  it("refuses fewer than two availability zones, naming the fix", () => {
    const s = new Stack(new App(), "OneAz");
    expect(() => new SealedNetwork(s, "N", { encryptionKey: new Key(s, "K"), maxAzs: 1 })).toThrow(/maxAzs must be an integer 2–6/);
  });
});

describe("sealed network without a model artefact", () => {
  const { stack: bare, t: bareTemplate } = buildStack({}, { id: "NoModel" });

  it("still exists (the training job runs in it) and its S3 endpoint lets nothing through until a workload is granted", () => {
    bareTemplate.resourceCountIs("AWS::EC2::VPC", 1);
    bareTemplate.resourceCountIs("AWS::SageMaker::Model", 0);
    bareTemplate.hasResourceProperties("AWS::EC2::VPCEndpoint", {
      PolicyDocument: {
        Statement: [{ Effect: "Deny", Principal: { AWS: "*" }, Action: "s3:*", Resource: "*", Sid: Match.anyValue() }],
        Version: "2012-10-17",
      },
      RouteTableIds: bare.network.vpc.isolatedSubnets.map((s) => ({ Ref: logicalId(s.node.findChild("RouteTable")) })),
    });
    // Nobody may attach network interfaces to it yet.
    const statements = Object.values(bareTemplate.findResources("AWS::IAM::ManagedPolicy")).flatMap(
      (p) => p.Properties.PolicyDocument.Statement as Record<string, unknown>[],
    );
    expect(JSON.stringify(statements)).not.toContain("ec2:CreateNetworkInterface");
  });
});
